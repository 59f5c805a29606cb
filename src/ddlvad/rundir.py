"""A run directory's file names, its writer lock, and the claim a new run makes on it.

Only one process writes a run: ``claim_run`` takes an exclusive ``fcntl`` lock on
``RUN/.lock`` (the holder's pid is written inside) before anything else is written, so a
second ``ddlvad train`` into the same folder fails at once and names the holder. The kernel
drops the lock when the holder dies, so a killed run never leaves a stale lock behind.

A new run refuses a folder that already holds a run unless ``overwrite``; the old files are
removed (``clear_run``) only once the new config and data validated.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ddlvad.io import clean_orphans

LOCK_FILE = ".lock"
CONFIG = "config.yaml"
CHECKPOINT = Path("checkpoints") / "last.pt"
# Everything a run (train, test, report, export, predict) writes into its folder.
ARTIFACTS = (
    CONFIG,
    "checkpoints",
    "train_log.csv",
    "sigma.csv",
    "train_summary.json",
    "threshold.json",
    "scores.csv",
    "scores.csv.json",
    "metrics.json",
    "plots",
    "report.html",
    "model.onnx",
    "model.onnx.json",
    "model_encoder.onnx",
    "model_head.onnx",
    "predict",
)
# What marks a folder as holding a run.
RUN_MARKERS = (CONFIG, str(CHECKPOINT), "train_log.csv")


class RunLocked(RuntimeError):
    """Another live process is writing this run directory."""


class RunExists(ValueError):
    """A new run was pointed at a folder that already holds a run."""


def run_markers(run_dir: str | Path) -> list[str]:
    """The files that show ``run_dir`` holds a run (empty when it does not)."""
    return [m for m in RUN_MARKERS if (Path(run_dir) / m).exists()]


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def lock_holder(run_dir: str | Path) -> str | None:
    """The pid (as text) of the process writing ``run_dir``, or None when no one is."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _read_pid(path)
        return None
    finally:
        os.close(fd)  # closing drops a probe lock we may have taken
    return None


@contextlib.contextmanager
def claim_run(run_dir: str | Path, enabled: bool = True) -> Iterator[Path]:
    """Hold ``run_dir``'s writer lock for the block; RunLocked naming the holder's pid.

    Creates ``run_dir``. A folder this call created and left holding nothing but the lock
    file (the run failed before writing) is removed again on exit."""
    run_dir = Path(run_dir)
    if not enabled:
        yield run_dir
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(
                f"{run_dir}: run directory is in use by another ddlvad process "
                f"(pid {_read_pid(path)}); wait for it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        for d in (run_dir, run_dir / "checkpoints"):  # no other writer: all are orphans
            clean_orphans(d, min_age_s=0.0)
        yield run_dir
    finally:
        os.close(fd)  # releases the lock
        if created and sorted(os.listdir(run_dir)) == [LOCK_FILE]:
            with contextlib.suppress(OSError):
                path.unlink()
                run_dir.rmdir()


def check_new_run(run_dir: str | Path, overwrite: bool) -> None:
    """RunExists unless ``run_dir`` holds no run yet or ``overwrite`` was asked for."""
    found = run_markers(run_dir)
    if found and not overwrite:
        raise RunExists(
            f"{run_dir}: already holds a run ({', '.join(found)}); pass --resume to continue "
            f"it, --overwrite to replace it, or choose another --out"
        )


def clear_run(run_dir: str | Path) -> None:
    """Remove a previous run's artifacts (the caller holds the lock and validated first)."""
    for name in ARTIFACTS:
        p = Path(run_dir) / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def checkpoint_info(run_dir: str | Path, ck: dict[str, Any]) -> dict[str, Any]:
    """Which checkpoint a result came from: file, epoch, step, sha256 of the file's bytes."""
    return {
        "file": str(Path(run_dir) / CHECKPOINT),
        "epoch": ck.get("epoch"),
        "step": ck.get("step"),
        "sha256": ck.get("sha256"),
    }


def warn_if_training(run_dir: str | Path) -> None:
    """A RuntimeWarning when another process is still training ``run_dir``: its checkpoint
    is an early one (the outputs record which checkpoint was scored)."""
    pid = lock_holder(run_dir)
    if pid is not None:
        warnings.warn(
            f"{run_dir}: still being trained (pid {pid}); scoring its latest checkpoint, "
            f"not the final one (the checkpoint's epoch and step are recorded in the outputs)",
            RuntimeWarning,
            stacklevel=3,
        )
