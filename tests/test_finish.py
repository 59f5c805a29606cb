"""The end-of-training steps (BN re-estimation, calibration, summary): resumable after a kill,
written in an order that leaves the summary last; scoring a run that lacks one says so."""

import json
import math
import shutil

import pytest
import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.cli import main
from ddlvad.scoring.evaluate import evaluate
from ddlvad.train.loop import train
from tests.conftest import tiny_config

CK = "checkpoints/last.pt"


def _ck(run):
    return load_checkpoint(run / CK)


def _summary(run):
    d = json.loads((run / "train_summary.json").read_text())
    return {k: v for k, v in d.items() if k not in ("seconds", "health")}  # health: Run.train


@pytest.fixture(scope="module")
def finished(synth_root, tmp_path_factory):
    """An uninterrupted run with a weight EMA (both last_bn and ema_bn)."""
    base = tmp_path_factory.mktemp("finished")
    cfg = tiny_config(synth_root, base / "cache", train__max_steps=5, train__ema=0.9)
    train(cfg, base / "run", progress=False)
    return base / "run", cfg


def _killed_at(run, state: str) -> None:
    """Put a finished run in the state a kill -9 leaves at an end-of-training step."""
    ck = _ck(run)
    if state in ("before_bn", "summary_first"):  # summary_first: the order before this fix
        blob = {k: v for k, v in ck.items() if k not in ("last_bn", "ema_bn", "sha256")}
        torch.save(blob, run / CK)
    if state != "before_summary":
        (run / "threshold.json").unlink()
    if state != "summary_first":
        (run / "train_summary.json").unlink()


@pytest.mark.parametrize(
    "state", ["before_bn", "before_threshold", "before_summary", "summary_first"]
)
def test_resume_redoes_missing_end_steps_bit_identically(finished, tmp_path, capsys, state):
    ref, cfg = finished
    run = shutil.copytree(ref, tmp_path / "run")
    _killed_at(run, state)
    args = ["train", "--root", str(cfg.data.root), "--out", str(run), "--resume", "--quiet"]
    assert main([*args, "--set", f"data.cache_dir={cfg.data.cache_dir}"]) == 0
    assert "nothing to do" not in capsys.readouterr().err
    a, b = _ck(run), _ck(ref)
    for key in ("last_bn", "ema_bn", "model", "ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert (run / "threshold.json").read_bytes() == (ref / "threshold.json").read_bytes()
    assert _summary(run) == _summary(ref)
    assert "health" in json.loads((run / "train_summary.json").read_text())  # then checked


def test_summary_is_written_last(synth_root, tmp_path, monkeypatch):
    """train_summary.json marks a finished run: a calibration that fails (here: gives NaN)
    leaves none, and no threshold.json."""
    import numpy as np

    monkeypatch.setattr(np, "quantile", lambda *a, **k: math.nan)
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="threshold.json: not written"):
        train(tiny_config(synth_root, tmp_path / "c", train__max_steps=2), run, progress=False)
    assert "last_bn" in _ck(run) and not (run / "train_summary.json").exists()
    assert not (run / "threshold.json").exists()


def test_scoring_an_unfinished_run_says_so(finished, tmp_path, capsys):
    ref, cfg = finished
    run = shutil.copytree(ref, tmp_path / "run")
    _killed_at(run, "summary_first")
    with pytest.warns(RuntimeWarning) as seen:
        m = evaluate(run, progress=False)
    said = " | ".join(str(w.message) for w in seen)
    assert "no clean BatchNorm statistics" in said and "training did not finish" in said
    assert m["protocol"]["bn"] == "trained" and m["checkpoint"]["bn"] == "trained"
    video = cfg.data.root + "/testing/frames/01"
    with pytest.warns(RuntimeWarning, match=r"training did not finish \(no threshold\.json\)"):
        assert main(["predict", "--run", str(run), video, "--out", str(tmp_path / "p")]) == 0
