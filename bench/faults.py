"""Reliability bench: kill -9 a tiny training run at random points, resume, compare.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/faults.py [--kills 5] [--seed 0] [--work DIR]

Generates a small synthetic scene, trains it once without interruption (the reference),
then for each of ``--kills`` trials starts the same run, sends SIGKILL once its log reaches
a random step (uniform over the reference's steps; the kill lands somewhere in the next
step or checkpoint write), resumes it with ``--resume``, and compares
with the reference: ``train_log.csv`` and ``sigma.csv`` byte for byte, and every tensor of
the final checkpoint (model, creator, optimiser state) bit for bit. Prints one row per
trial. This is a bench, not a test: it takes about a minute on one core.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.data.synthetic import SceneSpec, generate

SPEC = SceneSpec(height=48, width=64, train_videos=3, test_videos=1, frames=60, seed=5)
SETS = ["train.epochs=4", "pseudo.no_track=random", "train.threads=1"]
ROW = "{:>5} {:>9} {:>6} {:>8} {:>12} {:>5} {:>7}"


def train_cmd(root: Path, cache: Path, out: Path, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "ddlvad", "train", "--data", "synthetic", "--root", str(root)]
    cmd += ["--preset", "tiny", "--out", str(out), "--quiet", "--set", *SETS]
    cmd += [f"data.cache_dir={cache}"]
    return cmd + (["--resume"] if resume else [])


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def log_rows(out: Path) -> int:
    log = out / "train_log.csv"
    try:
        return max(len(log.read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


def kill_at_step(cmd: list[str], out: Path, step: int) -> float:
    """Start ``cmd`` and SIGKILL it as soon as its log holds ``step`` rows (polled every
    5 ms, so the kill lands anywhere in the following step or checkpoint write); returns
    the seconds it ran."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and log_rows(out) < step:
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - t0


def same_tensors(a: object, b: object) -> bool:
    """Bit-identical nested state (dicts, lists, tensors, numbers)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_tensors(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_tensors(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def state_at_kill(out: Path) -> tuple[int, str]:
    """(log rows, checkpoint epoch/step) left on disk by the killed process."""
    ck = out / "checkpoints" / "last.pt"
    if not ck.exists():
        return log_rows(out), "none"
    c = load_checkpoint(ck)
    return log_rows(out), f"e{c['epoch']}/s{c['step']}"


def compare(out: Path, ref: Path) -> tuple[bool, bool]:
    logs = all(
        (out / f).read_bytes() == (ref / f).read_bytes() for f in ("train_log.csv", "sigma.csv")
    )
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (out, ref))
    keys = ("model", "creator", "optim", "epoch", "step")
    return logs, all(same_tensors(a[k], b[k]) for k in keys)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="work folder (default: a temp folder)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ddlvad-faults-"))
    root, cache, ref = generate(work / "data", SPEC), work / "cache", work / "ref"
    wall = run(train_cmd(root, cache, ref))  # also builds the frame and track caches
    steps = len((ref / "train_log.csv").read_text().splitlines()) - 1
    print(f"reference: {steps} steps, {wall:.1f} s wall; work folder {work}")
    rng = random.Random(args.seed)
    cols = ("trial", "kill_at", "ran_s", "log_rows", "ckpt_at_kill", "logs", "weights")
    print(ROW.format(*cols))
    ok = True
    for i in range(args.kills):
        out, at = work / f"kill{i}", rng.randint(1, steps - 1)
        ran = kill_at_step(train_cmd(root, cache, out), out, at)
        rows, ck = state_at_kill(out)
        run(train_cmd(root, cache, out, resume=True))
        logs, weights = compare(out, ref)
        ok &= logs and weights
        print(ROW.format(i, f"step {at}", f"{ran:.1f}", rows, ck, str(logs), str(weights)))
    print("all bit-identical" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
