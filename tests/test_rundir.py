"""Run-directory safety (issue 16, items 1-4, 9, 10): claim, lock, resume checks, records."""

import hashlib
import json
import os

import pytest
import torch

from ddlvad.checkpoint import CheckpointRefused, load_checkpoint
from ddlvad.cli import main
from ddlvad.rundir import RunExists, claim_run, load_run_config, lock_holder
from ddlvad.train.loop import train
from tests.conftest import csv_rows, tiny_config, train_args


@pytest.fixture
def small_run(synth_root, tmp_path):
    """A 3-step run of its own (tests below change it)."""
    run = tmp_path / "run"
    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=3)
    train(cfg, run, progress=False)
    return run


# --- 1: a new run never silently replaces another -------------------------------------


def test_new_run_refuses_a_folder_holding_a_run(synth_root, tmp_path, small_run, capsys):
    before = {p: (small_run / p).read_bytes() for p in ("config.yaml", "checkpoints/last.pt")}
    args = train_args(synth_root, small_run, tmp_path / "cache", "train.max_steps=2")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and "\n" == err[-1:]
    assert {p: (small_run / p).read_bytes() for p in before} == before
    assert len(csv_rows(small_run / "train_log.csv")) == 3
    # --overwrite with a config that fails validation of its data: the old run stays
    bad = [a if a != str(synth_root) else str(tmp_path / "nope") for a in args]
    assert main([*bad, "--overwrite"]) == 2
    assert {p: (small_run / p).read_bytes() for p in before} == before
    assert main([*args, "--overwrite"]) == 0
    assert len(csv_rows(small_run / "train_log.csv")) == 2  # replaced by the new run
    assert load_run_config(small_run).train.max_steps == 2


def test_library_train_refuses_too(synth_root, tmp_path, small_run):
    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=2)
    with pytest.raises(RunExists, match="already holds a run"):
        train(cfg, small_run, progress=False)


# --- 2: a refused --resume writes nothing ---------------------------------------------


def test_refused_resume_leaves_the_run_untouched(synth_root, tmp_path, small_run, capsys):
    config = (small_run / "config.yaml").read_bytes()
    args = train_args(synth_root, small_run, tmp_path / "cache", "model.latent=8")
    assert main([*args, "--resume"]) == 2
    assert "model.latent: checkpoint 16 vs config 8" in capsys.readouterr().err
    assert (small_run / "config.yaml").read_bytes() == config
    assert load_run_config(small_run).model.latent == 16  # test/predict still load it
    assert main(["test", "--run", str(small_run), "--quiet"]) == 0


# --- 3: one writer per run ------------------------------------------------------------


def test_second_writer_fails_at_once_naming_the_holder(synth_root, tmp_path, capsys):
    run = tmp_path / "busy"
    with claim_run(run):
        assert lock_holder(run) == str(os.getpid())
        assert main(train_args(synth_root, run, tmp_path / "cache")) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and str(run) in err and "in use" in err
        assert not (run / "config.yaml").exists()
    assert lock_holder(run) is None  # released with the holder (also when it is killed)


def test_failed_new_run_leaves_no_empty_folder(tmp_path):
    with pytest.raises(RuntimeError), claim_run(tmp_path / "x"):
        raise RuntimeError("boom")
    assert not (tmp_path / "x").exists()


# --- 4: outputs say which checkpoint they scored ---------------------------------------


def test_outputs_record_the_checkpoint_they_scored(synth_root, tmp_path, small_run, capsys):
    digest = hashlib.sha256((small_run / "checkpoints/last.pt").read_bytes()).hexdigest()
    assert main(["test", "--run", str(small_run), "--quiet"]) == 0
    metrics = json.loads((small_run / "metrics.json").read_text())
    side = json.loads((small_run / "scores.csv.json").read_text())
    for rec in (metrics["checkpoint"], side["checkpoint"]):
        assert rec["sha256"] == digest and rec["step"] == 3 and rec["epoch"] == 0
    video = synth_root / "testing" / "frames" / "01"
    out = tmp_path / "pred"
    assert main(["predict", "--run", str(small_run), str(video), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"]["sha256"] == digest and summary["checkpoint"]["step"] == 3


def test_scoring_a_run_still_training_warns_or_refuses(synth_root, small_run, tmp_path):
    """predict reads the run: it warns. test writes into it: it takes the run's lock."""
    from ddlvad.rundir import RunLocked
    from ddlvad.scoring.evaluate import evaluate

    video = synth_root / "testing" / "frames" / "01"
    argv = ["predict", str(video), "--run", str(small_run), "--out", str(tmp_path / "p")]
    with claim_run(small_run):
        with pytest.warns(RuntimeWarning, match="still being trained"):
            assert main([*argv, "--quiet"]) == 0
        with pytest.raises(RunLocked, match="in use"):
            evaluate(small_run, progress=False)


# --- 9: refused checkpoints, in our own words ------------------------------------------


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize("kind", ["pickle", "truncated", "empty"])
def test_refused_checkpoint_never_suggests_weights_only_false(small_run, capsys, kind):
    path = small_run / "checkpoints/last.pt"
    if kind == "pickle":
        torch.save({"model": Payload(), "model_key": {}}, path)
    else:
        path.write_bytes(path.read_bytes()[: 100 if kind == "truncated" else 0])
    with pytest.raises(CheckpointRefused) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "weights_only" not in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert ("refused" if kind == "pickle" else "unreadable checkpoint") in str(e.value)
    assert main(["test", "--run", str(small_run), "--quiet"]) == 2
    out = capsys.readouterr()
    assert "weights_only" not in out.err + out.out and "code ran" not in out.out
    assert out.err.count("\n") == 1


# --- 10: summaries cumulative; resume continues or says why not ------------------------


def test_resume_with_larger_max_steps_continues_exactly(synth_root, tmp_path, small_run):
    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=6)
    s = train(cfg, small_run, resume=True, progress=False)  # stopped mid-epoch at step 3
    full = tmp_path / "full"
    train(tiny_config(synth_root, tmp_path / "cache", train__max_steps=6), full, progress=False)
    assert csv_rows(small_run / "train_log.csv") == csv_rows(full / "train_log.csv")
    a, b = (load_checkpoint(r / "checkpoints/last.pt")["model"] for r in (small_run, full))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert s["steps"] == 6 and s["sessions"] == 2
    assert sum(s["mask_counts"].values()) == 6 * 4  # every clip of both sessions counted
    assert s["mask_counts"] == json.loads((full / "train_summary.json").read_text())["mask_counts"]
    assert s["seconds"] > 0


def test_resume_with_nothing_to_do_says_so(synth_root, tmp_path, small_run, capsys):
    ck = (small_run / "checkpoints/last.pt").read_bytes()
    args = train_args(synth_root, small_run, tmp_path / "cache", "train.max_steps=3")
    assert main([*args, "--resume"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert (small_run / "checkpoints/last.pt").read_bytes() == ck
    assert main([*args[:-1], "train.max_steps=5", "--resume"]) == 0
    assert len(csv_rows(small_run / "train_log.csv")) == 5
