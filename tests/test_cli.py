import json

from ddlvad.cli import main


def test_cli_train_test_info_and_errors(synth_root, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["info", "--root", str(synth_root), "--preset", "tiny"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["videos"] == 2 and info["test"]["anomalous_frames"] > 0
    run = tmp_path / "run"
    args = [
        "train",
        "--data",
        "synthetic",
        "--root",
        str(synth_root),
        "--preset",
        "tiny",
        "--out",
        str(run),
        "--quiet",
        "--set",
        "train.max_steps=3",
        f"data.cache_dir={cache}",
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--quiet"]) == 0
    assert "frame AUC micro" in capsys.readouterr().out
    assert main(["train", "--root", str(tmp_path / "nope"), "--preset", "tiny", "--quiet"]) == 2
    assert "dataset root not found" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--root",
                str(synth_root),
                "--preset",
                "tiny",
                "--quiet",
                "--set",
                "data.T=4",
                f"data.cache_dir={cache}",
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 2
    )
    assert "odd" in capsys.readouterr().err


def test_demo_end_to_end_small(tmp_path, capsys):
    from ddlvad.data.synthetic import SceneSpec
    from ddlvad.experiments.demo import run_demo

    spec = SceneSpec(height=48, width=64, train_videos=2, test_videos=3, frames=30, seed=1)
    res = run_demo(tmp_path, epochs=1, progress=False, spec=spec, preset="tiny")
    assert 0 <= res["frame_auc_micro"] <= 1 and res["frames"] == 90
    assert (tmp_path / "run" / "metrics.json").exists()
    # the alerts predict raises on the test videos, against their labelled events
    assert res["events"] == 3 and 0 <= res["events_alerted"] <= 3
    assert set(res["alerts"]) == {"01", "02", "03"}


def test_demo_alert_summary_counts_events_and_false_alerts(trained_run, tmp_path):
    """Events alerted and false alerts, from test's raw scores through the run's detector,
    equal what predict writes for the same videos."""
    import csv
    import shutil

    from ddlvad.api import Run
    from ddlvad.experiments.demo import alert_summary

    run = Run(shutil.copytree(trained_run, tmp_path / "run"))
    run.test(progress=False)
    thr = json.loads((run.path / "threshold.json").read_text())
    thr["threshold"] = 0.0  # every frame alerts: one range per video, every event alerted
    (run.path / "threshold.json").write_text(json.dumps(thr))
    s = alert_summary(run)
    assert s["events"] == s["events_alerted"] == 3 and s["false_alerts"] == 0
    assert all(items == [(0, 29)] for items in s["alerts"].values())
    thr["threshold"] = 1e9  # nothing alerts
    (run.path / "threshold.json").write_text(json.dumps(thr))
    assert alert_summary(run)["events_alerted"] == 0
    with open(run.path / "scores.csv") as f:
        assert {r["video"] for r in csv.DictReader(f)} == set(s["alerts"])
