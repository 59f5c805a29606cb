"""The label-free health score: synthetic anomalies, the record, the check verb."""

import json

import numpy as np
import pytest

from ddlvad.cli import main
from ddlvad.health.check import health_of, stretch_length, synthetic_set, verdict
from ddlvad.health.synthetic import KINDS, SPEEDUP, frames_needed, span, synthesize


def _video(n=60, h=24, w=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_each_kind_changes_only_its_middle_third():
    v = _video()
    for kind in KINDS:
        s = synthesize(v, kind, 30, np.random.default_rng(1), "v")
        a, b = span(30)
        assert s.frames.shape == (30, 24, 32, 3) and s.labels.tolist() == [0] * a + [1] * (
            b - a
        ) + [0] * (30 - b)
        start = next(i for i in range(len(v)) if np.array_equal(v[i], s.frames[0]))
        assert np.array_equal(s.frames[:a], v[start : start + a])  # normal before
        first = 1 if kind == "fast" else 0  # the fast stretch starts from the same frame
        changed = [not np.array_equal(s.frames[a + k], v[start + a + k]) for k in range(b - a)]
        assert all(changed[first:])
    fast = synthesize(v, "fast", 30, np.random.default_rng(1))
    start = next(i for i in range(len(v)) if np.array_equal(v[i], fast.frames[0]))
    a, b = span(30)
    assert np.array_equal(fast.frames[a + 1], v[start + a + SPEEDUP])


def test_synthesis_is_repeatable_and_refuses_short_videos():
    v = _video()
    one = synthesize(v, "paste", 24, np.random.default_rng(7))
    two = synthesize(v, "paste", 24, np.random.default_rng(7))
    assert np.array_equal(one.frames, two.frames)
    with pytest.raises(ValueError, match="needs"):
        synthesize(v[:10], "noise", 24, np.random.default_rng(0), "short")
    with pytest.raises(ValueError, match="kind"):
        synthesize(v, "blur", 24, np.random.default_rng(0))
    assert stretch_length(frames_needed(40), 120) == 40 and stretch_length(5, 120) == 0


def test_synthetic_set_keeps_the_budget_and_skips_short_videos():
    videos = {"a": _video(200), "b": _video(200), "tiny": _video(8)}
    synth = synthetic_set(videos, budget=180)
    assert {s.source for s in synth} == {"a", "b"} and len(synth) == 2 * len(KINDS)
    assert sum(len(s.labels) for s in synth) <= 180
    with pytest.raises(ValueError, match="shorter"):
        synthetic_set({"tiny": _video(8)})


def test_health_is_the_pooled_auc_so_drift_between_videos_lowers_it():
    v = _video(200)
    synth = synthetic_set({"a": v, "b": v}, budget=180)
    perfect = [s.labels + 0.1 for s in synth]
    assert health_of(perfect, synth)["health"] == 1.0
    # each video separates perfectly, but video b's normal frames score above a's anomalies
    drifted = [s.labels + (5.0 if s.source == "b" else 0.0) for s in synth]
    rec = health_of(drifted, synth)
    assert rec["within_video"] == 1.0 and rec["health"] < 0.8 and rec["drift"] > 1
    assert verdict(rec)[0] == "unhealthy" and verdict({"health": 0.99})[0] == "healthy"


def test_check_verb_on_a_trained_run(trained_run, capsys):
    assert main(["check", "--run", str(trained_run), "--json", "--quiet"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert 0.0 <= rec["health"] <= 1.0 and set(rec["kinds"]) == set(KINDS)
    assert rec["verdict"] in ("healthy", "doubtful", "unhealthy") and rec["advice"]
    assert json.loads((trained_run / "health.json").read_text())["health"] == rec["health"]
    assert main(["check", "--run", str(trained_run), "--quiet"]) == 0
    assert "health " in capsys.readouterr().out


def test_train_seeds_keeps_the_healthiest_and_resumes(synth_root, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--root", str(synth_root), "--preset", "tiny"]
    args += ["--out", str(out), "--quiet", "--seeds", "2", "--set", "train.max_steps=3"]
    args += [f"data.cache_dir={tmp_path / 'cache'}", "train.seed=4"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    seeds = {r["seed"]: r["health"] for r in summary["seeds"]}
    assert set(seeds) == {4, 5}
    best = max(seeds, key=lambda s: (seeds[s], -s))
    assert summary["chosen_seed"] == best and summary["health"]["health"] == seeds[best]
    on_disk = json.loads((out / "train_summary.json").read_text())
    assert on_disk["chosen_seed"] == best
    chosen = out / "seeds" / f"seed_{best}" / "checkpoints" / "last.pt"
    assert (out / "checkpoints" / "last.pt").read_bytes() == chosen.read_bytes()
    assert f"seed: {best}" in (out / "config.yaml").read_text()
    assert main(args) == 2  # a second run into the same folder is refused
    assert "--resume" in capsys.readouterr().err
    (out / "seeds" / "seed_5" / "health.json").unlink()  # a stop before the last check
    assert main(args + ["--resume"]) == 0  # trains nothing again; checks seed 5 anew
    again = json.loads(capsys.readouterr().out)
    assert {r["seed"]: r["health"] for r in again["seeds"]} == seeds


def test_unhealthy_runs_are_warned_about_and_reported(tmp_path):
    from ddlvad.report.page import health_line
    from ddlvad.rundir import read_health, warn_if_unhealthy

    run = tmp_path / "run"
    run.mkdir()
    assert read_health(run) is None and "not checked" in health_line(run)
    (run / "train_summary.json").write_text(json.dumps({"health": {"health": 0.97}}))
    assert read_health(run) == {"health": 0.97}
    rec = {"health": 0.81, "verdict": "unhealthy", "kinds": {"noise": 0.9}}
    (run / "health.json").write_text(json.dumps(rec))  # health.json wins over the summary
    with pytest.warns(RuntimeWarning, match="unhealthy model .health 0.810"):
        warn_if_unhealthy(run)
    assert "0.810, unhealthy" in health_line(run)
