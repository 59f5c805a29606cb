"""Training that stops early says so in one line naming the run and the step: a diverged
loss or weights (the last finite checkpoint kept), SIGTERM and SIGINT."""

import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.cli import main
from ddlvad.train.loop import train
from tests.conftest import csv_rows, tiny_config, train_args


@pytest.mark.parametrize("steps", [1, 2, 30])
def test_diverged_training_fails_and_keeps_finite_weights(synth_root, tmp_path, capsys, steps):
    """lr = 1e9 overflows the weights, their BN statistics or the loss, depending on when
    training stops: each is one line naming the run, exit 2, no NaN written anywhere."""
    run = tmp_path / "rnan"
    sets = ("train.lr=1e9", f"train.max_steps={steps}")
    args = train_args(synth_root, run, tmp_path / "cache", *sets)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(run) in err and "step" in err, err
    assert "diverged" in err and not (run / "threshold.json").exists()
    assert not (run / "train_summary.json").exists()
    ck = load_checkpoint(run / "checkpoints/last.pt")
    for key in ("model", "last_bn"):
        assert all(torch.isfinite(t).all() for t in ck.get(key, {}).values()), key
    assert all(
        math.isfinite(float(r["loss"])) and float(r["loss"]) > 0
        for r in csv_rows(run / "train_log.csv")
    )


def test_non_finite_weights_are_never_saved(synth_root, tmp_path, monkeypatch):
    import ddlvad.train.loop as L

    real = L._run_epoch

    def poison(*a, **k):
        step = real(*a, **k)
        with torch.no_grad():
            next(a[1].model.parameters()).fill_(math.nan)  # a[1]: the DDLNet
        return step

    monkeypatch.setattr(L, "_run_epoch", poison)
    run = tmp_path / "run"
    with pytest.raises(L.NonFiniteLoss, match=rf"{run}: .*non-finite weights after step 3"):
        train(tiny_config(synth_root, tmp_path / "c", train__max_steps=3), run, progress=False)
    ck = load_checkpoint(run / "checkpoints/last.pt")
    assert ck["step"] == 0 and all(torch.isfinite(t).all() for t in ck["model"].values())


def _default_sigint() -> None:
    # A suite started as a background job (`cmd &` without job control) inherits SIGINT
    # ignored, and Python then keeps it ignored: give the child the default, as a terminal
    # would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ddlvad", *args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=_default_sigint,
    )


def _wait_rows(proc, log, n):
    deadline = time.monotonic() + 300  # a guard against a hang, not a timing check
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if len(log.read_text().splitlines()) > n:
                return
        except OSError:
            pass
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_in_one_line_saying_where_it_resumes(synth_root, tmp_path, sig):
    run = tmp_path / "run"
    proc = _start(train_args(synth_root, run, tmp_path / "cache", "train.epochs=500"))
    _wait_rows(proc, run / "train_log.csv", 20)  # past the first epoch's checkpoint
    proc.send_signal(sig)
    err = proc.communicate()[1].decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{run}: stopped by {sig.name} at step" in err and "--resume" in err
    saved = int(re.search(r"go on from step (\d+)", err).group(1))
    assert saved == load_checkpoint(run / "checkpoints/last.pt")["step"] > 0


def test_a_stop_in_the_first_epoch_resumes_exactly(synth_root, tmp_path, monkeypatch):
    """A new run checkpoints step 0, so a stop before the first epoch's checkpoint resumes
    (from step 0) instead of finding no checkpoint."""
    import ddlvad.train.loop as L

    cfg = tiny_config(synth_root, tmp_path / "c", train__max_steps=6)
    train(cfg, tmp_path / "full", progress=False)
    real, calls = L.step_loss, []

    def interrupt(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(L, "step_loss", interrupt)
    run = tmp_path / "run"
    with pytest.raises(L.TrainingStopped, match="stopped by SIGINT at step 3; .* from step 0"):
        train(cfg, run, progress=False)
    monkeypatch.setattr(L, "step_loss", real)
    train(cfg, run, resume=True, progress=False)
    assert csv_rows(run / "train_log.csv") == csv_rows(tmp_path / "full" / "train_log.csv")
    a, b = (load_checkpoint(r / "checkpoints/last.pt")["model"] for r in (run, tmp_path / "full"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nproc_below_one_is_refused(synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*train_args(synth_root, run, tmp_path / "cache"), "--nproc", "0"]) == 2
    err = capsys.readouterr().err
    assert "--nproc 0: expected" in err and err.count("\n") == 1 and not run.exists()
