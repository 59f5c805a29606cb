"""Weight EMA (train.ema): kept in checkpoints, resumed exactly, chosen by score.weights."""

import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.rundir import load_trained
from ddlvad.train.loop import train
from tests.conftest import tiny_config


def _ck(run):
    return load_checkpoint(run / "checkpoints" / "last.pt")


def test_ema_kept_resumed_and_scored(synth_root, tmp_path):
    cfg = tiny_config(synth_root, tmp_path / "cache", train__ema=0.9, train__max_steps=6)
    train(cfg, tmp_path / "full", progress=False)
    half = tiny_config(synth_root, tmp_path / "cache", train__ema=0.9, train__max_steps=3)
    train(half, tmp_path / "resumed", progress=False)
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    a, b = _ck(tmp_path / "full"), _ck(tmp_path / "resumed")
    assert a["ema"].keys() == b["ema"].keys() and int(a["ema"]["n_averaged"]) == 6
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k  # the EMA resumes bit-exactly
    info: dict = {}
    _, m = load_trained(tmp_path / "full", info=info)
    assert info["weights"] == "ema"
    w = "encoder.blocks.0.branches.0.weight"
    assert torch.equal(m.state_dict()[w], a["ema"]["module." + w])
    # the EMA's BN statistics were re-estimated at the end of training, and are scored
    rv = "encoder.blocks.0.bn1.running_var"
    assert torch.equal(m.state_dict()[rv], a["ema_bn"][rv])
    assert not torch.equal(a["ema_bn"][rv], a["ema"]["module." + rv])
    assert not torch.equal(a["ema"]["module." + w], a["model"][w])  # an average, not a copy
    cfg.score.weights = "last"
    info = {}
    _, m = load_trained(tmp_path / "full", cfg, info=info)
    assert info["weights"] == "last" and torch.equal(m.state_dict()[w], a["model"][w])


def test_no_ema_by_default_scores_last_weights(trained_run):
    assert "ema" not in _ck(trained_run)
    info: dict = {}
    load_trained(trained_run, info=info)
    assert info["weights"] == "last"


def test_clean_bn_statistics_are_stored_and_scored_by_default(trained_run, tmp_path):
    """Training stores the last weights' BN statistics re-estimated on clean clips (the
    running ones mix in the pseudo-anomalous pass); scoring uses them unless score.bn is
    "trained"; ``python -m ddlvad.ema`` rebuilds them for an older run."""
    import shutil

    import pytest

    from ddlvad.config import apply_overrides
    from ddlvad.ema import main as ema_main
    from ddlvad.rundir import load_run_config

    ck = _ck(trained_run)
    rm = "encoder.blocks.0.bn1.running_mean"
    assert rm in ck["last_bn"] and not torch.allclose(ck["last_bn"][rm], ck["model"][rm])
    w = "encoder.blocks.0.branches.0.weight"
    assert w not in ck["last_bn"]  # statistics only; the weights are the last step's
    info: dict = {}
    _, m = load_trained(trained_run, info=info)
    assert info["bn"] == "clean" and torch.equal(m.state_dict()[rm], ck["last_bn"][rm])
    cfg = load_run_config(trained_run)
    cfg.score.bn = "trained"
    _, m = load_trained(trained_run, cfg, info=info)
    assert info["bn"] == "trained" and torch.equal(m.state_dict()[rm], ck["model"][rm])
    # an older run (no last_bn): scored as trained until the entry point rebuilds them
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    blob = {k: v for k, v in ck.items() if k not in ("last_bn", "sha256")}
    torch.save(blob, old / "checkpoints" / "last.pt")
    with pytest.warns(RuntimeWarning, match="holds no clean BatchNorm statistics"):
        scored, _ = load_trained(old, info=info)
    assert info["bn"] == "trained" and scored.score.bn == "trained"
    assert ema_main(["--run", str(old)]) == 0
    assert torch.equal(_ck(old)["last_bn"][rm], ck["last_bn"][rm])  # same clips, same order
    apply_overrides(cfg, {"score.bn": "mixed"})
    with pytest.raises(ValueError, match="score.bn"):
        cfg.validate("test")
