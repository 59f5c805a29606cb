"""Reliability bench: kill -9 a tiny training run at random points, resume, compare.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/faults.py [--kills 5] [--seed 0] [--work DIR]

Generates a small synthetic scene, trains it once without interruption (the reference),
then for each of ``--kills`` trials starts the same run, sends SIGKILL once its log reaches
a random step (uniform over the reference's steps; the kill lands somewhere in the next
step or checkpoint write), resumes it with ``--resume``, and compares with the reference:
``train_log.csv`` and ``sigma.csv`` byte for byte, every tensor of the final checkpoint
(model, creator, optimiser state) bit for bit, and the end-of-training outputs (``end``:
the clean BatchNorm statistics in the checkpoint, ``threshold.json`` byte for byte,
``train_summary.json`` but for its seconds and sessions, the sigma plot). Then one trial
per kill point around the end-of-training steps: once the log holds the last step
(``trained``: the kill lands in the last checkpoint write), once the checkpoint holds it
(``saved``: in the BatchNorm re-estimation), once the checkpoint holds the clean statistics
(``bn``: in the calibration), once ``threshold.json`` exists (``threshold``: before or just
after the summary write, which takes well under the 5 ms poll) and once
``train_summary.json`` exists (``summary``: in the sigma plot or at exit). Prints one row
per trial.

Then ``--test-kills`` trials of ``ddlvad test``: a copy of the reference run holding the
outputs of an earlier test (``--median 0``) is tested again and killed at a random moment
(uniform over the reference test's wall time). What the kill left must be one whole set
(``check_outputs``: the old outputs or the new, never a mix), and a second ``test`` must
give the reference test's scores.csv and metrics.json byte for byte (the run's own path in
the checkpoint record read as RUN). This is a bench, not a test: it takes a few minutes on
one core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.data.synthetic import SceneSpec, generate
from ddlvad.rundir import SIGMA_PLOT
from ddlvad.scoring.outputs import check_outputs

SPEC = SceneSpec(height=48, width=64, train_videos=3, test_videos=1, frames=60, seed=5)
SETS = ["train.epochs=4", "pseudo.no_track=random", "train.threads=1"]
ROW = "{:>5} {:>9} {:>6} {:>8} {:>12} {:>11} {:>5} {:>7} {:>5}"
END_POINTS = ["trained", "saved", "bn", "threshold", "summary"]  # in the end-of-training steps


def train_cmd(root: Path, cache: Path, out: Path, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "ddlvad", "train", "--data", "synthetic", "--root", str(root)]
    cmd += ["--preset", "tiny", "--out", str(out), "--quiet", "--set", *SETS]
    cmd += [f"data.cache_dir={cache}"]
    return cmd + (["--resume"] if resume else [])


def test_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ddlvad", "test", "--run", str(run_dir), "--quiet", *extra]


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


def checkpoint(out: Path) -> dict:
    """The run's last.pt, or {} while it has none."""
    try:
        return load_checkpoint(out / "checkpoints" / "last.pt")
    except (OSError, ValueError):
        return {}


def kill_point(out: Path, point: str, steps: int) -> Callable[[], bool]:
    """When to kill: a number of log rows, or a named point in the end-of-training steps."""
    if point == "trained":
        return lambda: log_rows(out) >= steps
    if point == "saved":
        return lambda: checkpoint(out).get("step") == steps
    if point == "bn":
        return lambda: "last_bn" in checkpoint(out)
    if point in ("threshold", "summary"):
        name = {"threshold": "threshold.json", "summary": "train_summary.json"}[point]
        return lambda: (out / name).exists()
    return lambda: log_rows(out) >= int(point)


def kill_when(cmd: list[str], reached: Callable[[], bool]) -> float:
    """Start ``cmd`` and SIGKILL it as soon as ``reached()`` (polled every 5 ms, so the kill
    lands anywhere in the next step or write); returns the seconds it ran."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not reached():
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


def state_at_kill(out: Path) -> tuple[int, str, str]:
    """(log rows, checkpoint epoch/step, end-of-training outputs) the killed process left."""
    ck = out / "checkpoints" / "last.pt"
    if not ck.exists():
        return log_rows(out), "none", "-"
    c = load_checkpoint(ck)
    done = ["bn"] if "last_bn" in c else []
    done += [k for k, f in (("thr", "threshold.json"), ("sum", "train_summary.json"))
             if (out / f).exists()]  # fmt: skip
    return log_rows(out), f"e{c['epoch']}/s{c['step']}", "+".join(done) or "-"


def summary(run: Path) -> dict:
    """train_summary.json but for what describes the sessions rather than the result."""
    d = json.loads((run / "train_summary.json").read_text())
    return {k: v for k, v in d.items() if k not in ("seconds", "sessions")}


def compare(out: Path, ref: Path) -> tuple[bool, bool, bool]:
    """(logs, weights, end-of-training outputs) bit-identical to the reference's."""
    logs = all(
        (out / f).read_bytes() == (ref / f).read_bytes() for f in ("train_log.csv", "sigma.csv")
    )
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (out, ref))
    keys = ("model", "creator", "optim", "epoch", "step")
    end = (
        "last_bn" in a
        and same_tensors(a["last_bn"], b["last_bn"])
        and (out / "threshold.json").read_bytes() == (ref / "threshold.json").read_bytes()
        and summary(out) == summary(ref)
        and (out / SIGMA_PLOT).exists()
    )
    return logs, all(same_tensors(a[k], b[k]) for k in keys), end


TEST_FILES = ("scores.csv", "metrics.json")
TEST_ROW = "{:>5} {:>8} {:>14} {:>9}"


def test_outputs(run_dir: Path, copied_from: Path | None = None) -> dict[str, bytes]:
    """scores.csv and metrics.json, with the path of the run that wrote them (this one, or
    the one it was ``copied_from``: the checkpoint record names it) read as RUN."""
    out = {}
    for f in TEST_FILES:
        data = (run_dir / f).read_bytes()
        for d in (run_dir, copied_from):
            data = data.replace(str(d).encode(), b"RUN") if d else data
        out[f] = data
    return out


def test_outputs_state(
    run_dir: Path, base: Path, old: dict[str, bytes], new: dict[str, bytes]
) -> str:
    """What a killed ``test`` of a copy of ``base`` left: ``old`` or ``new`` (a whole set),
    else ``MIXED``."""
    try:
        check_outputs(run_dir)
    except (OSError, ValueError):
        return "MIXED"
    got = test_outputs(run_dir, base)
    return "old" if got == old else "new" if got == new else "MIXED"


def test_trials(work: Path, ref: Path, kills: int, rng: random.Random) -> bool:
    """Kill ``ddlvad test`` at random moments; True when every trial left one whole set and
    re-testing reproduced the reference test's outputs."""

    base = work / "test-ref"
    shutil.copytree(ref, base)
    run(test_cmd(base, "--median", "0"))  # the outputs a later test replaces
    old = test_outputs(base)
    full = work / "test-full"
    shutil.copytree(base, full)
    wall = run(test_cmd(full))
    new = test_outputs(full)
    print(f"\nreference test: {wall:.1f} s wall")
    print(TEST_ROW.format("trial", "kill_s", "left_at_kill", "retested"))
    ok = True
    for i in range(kills):
        out, at = work / f"testkill{i}", rng.uniform(0, wall)
        shutil.copytree(base, out)
        t0 = time.perf_counter()
        kill_when(test_cmd(out), lambda t0=t0, at=at: time.perf_counter() - t0 >= at)
        left = test_outputs_state(out, base, old, new)
        run(test_cmd(out))
        same = test_outputs(out) == new
        ok &= left != "MIXED" and same
        print(TEST_ROW.format(i, f"{at:.2f}", left, "identical" if same else "DIFFERENT"))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--test-kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="work folder (default: a temp folder)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ddlvad-faults-"))
    root, cache, ref = generate(work / "data", SPEC), work / "cache", work / "ref"
    wall = run(train_cmd(root, cache, ref))  # also builds the frame and track caches
    steps = len((ref / "train_log.csv").read_text().splitlines()) - 1
    print(f"reference: {steps} steps, {wall:.1f} s wall; work folder {work}")
    rng = random.Random(args.seed)
    points = [str(rng.randint(1, steps - 1)) for _ in range(args.kills)] + END_POINTS
    cols = ("trial", "kill_at", "ran_s", "log_rows", "ckpt_at_kill", "end_at_kill")
    print(ROW.format(*cols, "logs", "weights", "end"))
    ok = True
    for i, point in enumerate(points):
        out = work / f"kill{i}"
        ran = kill_when(train_cmd(root, cache, out), kill_point(out, point, steps))
        rows, ck, done = state_at_kill(out)
        run(train_cmd(root, cache, out, resume=True))
        same = compare(out, ref)
        ok &= all(same)
        at = f"step {point}" if point.isdigit() else point
        print(ROW.format(i, at, f"{ran:.1f}", rows, ck, done, *map(str, same)))
    ok &= test_trials(work, ref, args.test_kills, rng)
    print("all bit-identical" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
