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
