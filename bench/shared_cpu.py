"""Shared CPU: each job's speed beside another job, against alone and against its fair share.

    python bench/shared_cpu.py                        # this checkout's package (~4 min, 2 cores)
    python bench/shared_cpu.py --src ../main/src      # another checkout's package (before/after)

Run it on a quiet machine: other load skews every figure. Jobs are real ``ddlvad`` commands
with default threads (OMP_NUM_THREADS and OMP_WAIT_POLICY unset, no pinning), as a site runs
them:
  train     ddlvad train --preset cpu (192x192x3, batch 8) on a synthetic scene
  predict   ddlvad predict --model ped2 FOLDER --engine stream: synthetic videos, decoded from
            PNG frames, scored frame by frame (the live path's engine), as fast as it can
Scenarios: each job alone; each job alone on its fair share (cores / jobs: one core of two,
``OMP_NUM_THREADS=1 taskset -c`` the first CPU of the set); train + predict; train + train.
The second job starts ``--stagger`` seconds after the first (a live detector runs when a
training starts).
Measured while both jobs run (from the moment each has produced its first result to the
moment the first one ends; the other is then stopped): train = steps per second (the rows
of train_log.csv, timestamped as they are appended), predict = frames per second of the
videos scored wholly inside that window. Alone: the same, past the first ``--warmup`` steps.
Slowdown = alone rate / shared rate; vs fair = fair-share rate / shared rate (target <= 1.5).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAGS = itertools.count()  # one output folder per job
LINE = re.compile(r"^(\S+): (\d+) frames in ([\d.]+) s")


@dataclass
class Job:
    """One running command and the times its results came in."""

    kind: str  # "train" or "predict"
    proc: subprocess.Popen
    log: Path | None = None  # train_log.csv
    events: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, amount)
    done: float | None = None

    def poll(self) -> None:
        """Record results that arrived (train: one row = one step)."""
        if self.kind == "train" and self.log is not None and self.log.exists():
            rows = max(0, len(self.log.read_text().splitlines()) - 1)
            now = time.perf_counter()
            while len(self.events) < rows:
                last = self.events[-1][1] if self.events else now
                self.events.append((last, now, 1.0))
        if self.done is None and self.proc.poll() is not None:
            self.done = time.perf_counter()


def _reader(job: Job) -> None:
    """predict's stdout: one ``NAME: N frames in S s`` line per video."""
    for line in job.proc.stdout:
        m = LINE.match(line)
        if m:
            end = time.perf_counter()
            job.events.append((end - float(m.group(3)), end, float(m.group(2))))


def env_for(src: Path, pinned: bool, extra: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = str(src)
    env.update(kv.split("=", 1) for kv in extra)
    if pinned:
        env["OMP_NUM_THREADS"] = "1"
    return env


def start(kind: str, args, work: Path, pinned: bool = False) -> Job:
    py = [sys.executable, "-m", "ddlvad"]
    tag = next(TAGS)
    if kind == "train":
        out = work / f"run_{tag}"
        cmd = [
            *py, "train", "--data", "synthetic", "--root", str(work / "scene"), "--preset",
            "cpu", "--out", str(out), "--quiet", "--set",
            f"data.cache_dir={work / 'cache'}", f"train.max_steps={args.steps}",
        ]  # fmt: skip
        log = out / "train_log.csv"
    else:
        cmd = [
            *py, "predict", str(work / "scene" / "testing" / "frames"), "--model", "ped2",
            "--engine", "stream", "--precision", "fp32", "--out", str(work / f"pred_{tag}"),
        ]  # fmt: skip
        log = None
    if pinned:
        cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]
    proc = subprocess.Popen(
        cmd,
        env=env_for(args.src, pinned, args.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=work,
    )
    job = Job(kind, proc, log)
    if kind == "predict":
        threading.Thread(target=_reader, args=(job,), daemon=True).start()
    return job


def stop(job: Job) -> None:
    if job.proc.poll() is None:
        job.proc.terminate()
    try:
        job.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        job.proc.kill()
        job.proc.wait()


def rate(job: Job, lo: float, hi: float) -> float | None:
    """Results per second of the events that ran wholly inside [lo, hi]."""
    ev = [e for e in job.events if e[0] >= lo and e[1] <= hi]
    secs = sum(e[1] - e[0] for e in ev)
    return sum(e[2] for e in ev) / secs if ev and secs > 0 else None


def run_alone(kind: str, args, work: Path, pinned: bool) -> float | None:
    job = start(kind, args, work, pinned)
    while job.done is None and len(job.events) < args.warmup + args.measure:
        time.sleep(0.05)
        job.poll()
    stop(job)
    if len(job.events) <= args.warmup:
        return None
    return rate(job, job.events[args.warmup][0], float("inf"))


def run_pair(kinds: tuple[str, str], args, work: Path) -> list[float | None]:
    """Both jobs, the second ``--stagger`` s later, until each has ``--measure`` results
    inside the window where both run (or one ends); their rates in that window."""
    a = start(kinds[0], args, work)
    time.sleep(args.stagger)
    b = start(kinds[1], args, work)
    jobs = (a, b)
    both = None  # when both are past their warm-up
    while all(j.done is None for j in jobs):
        time.sleep(0.05)
        for j in jobs:
            j.poll()
        if both is None and all(len(j.events) > args.warmup for j in jobs):
            both = max(j.events[args.warmup][0] for j in jobs)
        if both is not None and all(
            sum(e[0] >= both for e in j.events) >= args.measure for j in jobs
        ):
            break
    end = min(j.done or time.perf_counter() for j in jobs)
    for j in jobs:
        stop(j)
    if both is None:
        return [None, None]
    return [rate(j, both, end) for j in jobs]


def fmt(x: float | None) -> str:
    return f"{x:8.2f}" if x is not None else "       -"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the ddlvad package to run")
    ap.add_argument("--steps", type=int, default=400, help="train.max_steps (stopped earlier)")
    ap.add_argument("--warmup", type=int, default=2, help="results left out at each job's start")
    ap.add_argument("--measure", type=int, default=12, help="results measured per job")
    ap.add_argument("--stagger", type=float, default=3.0, help="seconds between the two starts")
    ap.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="set in every job's environment"
    )
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    args.src = args.src.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        cpus = sorted(os.sched_getaffinity(0))
        print(f"package {args.src}; cpus {cpus}; env {args.env}; {time.ctime()}")
        prepare(work, args)
        report(args, work)


def prepare(work: Path, args) -> None:
    """The synthetic scene, its frame cache and tracks (a first short training fills them)."""
    from ddlvad.data.synthetic import SceneSpec, generate

    spec = SceneSpec(height=192, width=192, train_videos=4, test_videos=16, frames=120, seed=0)
    generate(work / "scene", spec)
    job = start("train", args, work, pinned=True)
    while not job.events and job.done is None:
        time.sleep(0.1)
        job.poll()
    stop(job)


def report(args, work: Path) -> None:
    alone = {k: run_alone(k, args, work, False) for k in ("train", "predict")}
    fair = {k: run_alone(k, args, work, True) for k in ("train", "predict")}
    unit = {"train": "steps/s", "predict": "fps"}
    print(f"\n{'job':10s} {'unit':8s} {'alone':>8s} {'fair':>8s}   (fair: 1 thread, one core)")
    for k in alone:
        print(f"{k:10s} {unit[k]:8s} {fmt(alone[k])} {fmt(fair[k])}")
    print(
        f"\n{'scenario':17s} {'job':8s} {'shared':>8s} {'alone':>8s} {'fair':>8s} "
        f"{'slowdown':>9s} {'vs fair':>8s}"
    )
    for kinds in (("train", "predict"), ("train", "train")):
        shared = run_pair(kinds, args, work)
        for k, r in zip(kinds, shared, strict=True):
            slow = alone[k] / r if r and alone[k] else None
            vs = fair[k] / r if r and fair[k] else None
            print(
                f"{' + '.join(kinds):17s} {k:8s} {fmt(r)} {fmt(alone[k])} {fmt(fair[k])} "
                f"{fmt(slow)}x {fmt(vs)}x"
            )


if __name__ == "__main__":
    main()
