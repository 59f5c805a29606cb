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
