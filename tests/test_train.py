import csv
import json

import pytest
import torch

from ddlvad.checkpoint import CheckpointMismatch, load_checkpoint
from ddlvad.rundir import load_run_config
from ddlvad.scoring.evaluate import evaluate
from ddlvad.train.loop import NonFiniteLoss, train
from tests.conftest import tiny_config


def _log(run):
    with (run / "train_log.csv").open() as f:
        return list(csv.DictReader(f))


def test_run_directory_contents(trained_run):
    for name in (
        "config.yaml",
        "checkpoints/last.pt",
        "train_log.csv",
        "sigma.csv",
        "train_summary.json",
    ):
        assert (trained_run / name).exists(), name
    rows = _log(trained_run)
    assert len(rows) == 6 and {"loss", "recon", "dist", "sigma"} <= set(rows[0])
    summary = json.loads((trained_run / "train_summary.json").read_text())
    assert summary["mask_counts"]["track"] > 0  # pseudo-anomalies landed on tracked objects
    assert 0 < summary["sigma"] < 1 and summary["sigma"] != 0.5  # l moved
    ck = load_checkpoint(trained_run / "checkpoints/last.pt", load_run_config(trained_run))
    assert set(ck) >= {"model", "creator", "optim", "sched", "epoch", "step", "rng"}


def test_test_verb_writes_scores_and_metrics(trained_run):
    m = evaluate(trained_run, progress=False)
    assert 0.0 <= m["frame_auc_micro"] <= 1.0
    assert m["protocol"]["median"] == 5 and m["protocol"]["patch"] == 8
    saved = json.loads((trained_run / "metrics.json").read_text())
    assert saved["frame_auc_micro"] == pytest.approx(m["frame_auc_micro"])
    with (trained_run / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "frame", "raw", "smoothed", "label"]
    assert len(rows) == m["frames"] == 90  # every labelled frame scored, edges included


def test_resume_matches_uninterrupted_run(synth_root, tmp_path):
    kw = dict(train__epochs=3, pseudo__no_track="random")
    full = tmp_path / "full"
    train(tiny_config(synth_root, tmp_path / "c", **kw), full, progress=False)
    part = tmp_path / "part"
    # "interrupt" after epoch 2 by running a 2-epoch schedule... with the 3-epoch config:
    cfg = tiny_config(synth_root, tmp_path / "c", **kw)
    cfg.train.max_steps = len(_log(full)) * 2 // 3
    train(cfg, part, progress=False)
    cfg.train.max_steps = 0
    train(cfg, part, resume=True, progress=False)
    a, b = _log(full), _log(part)
    assert len(a) == len(b)
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["sigma"] for r in a] == [r["sigma"] for r in b]


def test_non_finite_loss_stops_and_keeps_checkpoint(synth_root, tmp_path, monkeypatch):
    cfg = tiny_config(synth_root, tmp_path / "c", train__epochs=2)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    before = (run / "checkpoints/last.pt").read_bytes()
    import ddlvad.train.loop as T

    real = T.step_loss

    def poisoned(*a, **k):
        parts, masked = real(*a, **k)
        parts.total = parts.total * float("nan")
        return parts, masked

    monkeypatch.setattr(T, "step_loss", poisoned)
    cfg.train.epochs = 3
    with pytest.raises(NonFiniteLoss, match="non-finite loss at epoch 3"):
        train(cfg, run, resume=True, progress=False)
    assert (run / "checkpoints/last.pt").read_bytes() == before


def test_foreign_checkpoint_refused(trained_run):
    cfg = load_run_config(trained_run)
    cfg.model.latent = 32
    cfg.data.T = 5
    with pytest.raises(CheckpointMismatch) as e:
        load_checkpoint(trained_run / "checkpoints/last.pt", cfg)
    assert "model.latent: checkpoint 16 vs config 32" in str(e.value)
    assert "T: checkpoint 3 vs config 5" in str(e.value)


def test_checkpoint_is_weights_only_safe(trained_run):
    ck = torch.load(trained_run / "checkpoints/last.pt", weights_only=True)
    assert isinstance(ck["model"], dict)


@pytest.mark.parametrize("mode", ["none", "static"])
def test_other_pseudo_modes_train(synth_root, tmp_path, mode):
    cfg = tiny_config(synth_root, tmp_path / "c", pseudo__mode=mode, train__max_steps=2)
    s = train(cfg, tmp_path / "run", progress=False)
    if mode == "none":
        assert s["sigma"] is None and s["mask_counts"]["track"] == 0
    else:
        assert s["sigma"] == pytest.approx(0.5)  # static sigma never moves


def test_l_learning_rate_scale(synth_root, tmp_path):
    """pseudo.l_lr_scale gives l its own Adam group: Adam's first step moves a parameter by
    about its learning rate, so l moves 10x less at scale 0.1."""
    moved = {}
    for scale in (1.0, 0.1):
        cfg = tiny_config(synth_root, tmp_path / "c", train__max_steps=1, pseudo__no_track="random")
        cfg.pseudo.l_lr_scale = scale
        s = train(cfg, tmp_path / f"run{scale}", progress=False)
        l_end = torch.logit(torch.tensor(s["sigma"], dtype=torch.float64))
        moved[scale] = abs(float(l_end) - cfg.pseudo.l_init)
        ck = load_checkpoint(tmp_path / f"run{scale}/checkpoints/last.pt", cfg)
        moved[f"groups{scale}"] = len(ck["optim"]["param_groups"])
    assert moved[1.0] == pytest.approx(cfg.train.lr, rel=0.05)
    assert moved[0.1] == pytest.approx(0.1 * moved[1.0], rel=0.05)
    assert moved["groups1.0"] == 1 and moved["groups0.1"] == 2
