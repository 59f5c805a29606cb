"""Where a training run starts: fresh, or from its checkpoint, checked before any write.

A checkpoint records the epoch it was saved in, the global step, and ``batch``: 0 when the
epoch completed, else the number of batches done when ``train.max_steps`` stopped it
mid-epoch (the RNG state then is the one from the start of that epoch). A resume continues
exactly where the run stopped, so raising ``train.max_steps`` or ``train.epochs`` on a
finished run continues it as if it had never stopped. Elapsed seconds and mask counts are
kept in the checkpoint too, so ``train_summary.json`` covers every session of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlvad.checkpoint import load_checkpoint
from ddlvad.config import Config
from ddlvad.rundir import CHECKPOINT, check_new_run


@dataclass
class StartPoint:
    """The first (epoch, batch) to train and the totals carried over from earlier sessions."""

    epoch: int = 0
    skip: int = 0  # batches of ``epoch`` already done
    step: int = 0
    seconds: float = 0.0
    sessions: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"track": 0, "random": 0, "none": 0})

    @classmethod
    def of(cls, ck: dict[str, Any] | None) -> StartPoint:
        if ck is None:
            return cls()
        partial = int(ck.get("batch", 0))
        return cls(
            epoch=int(ck["epoch"]) + (0 if partial else 1),
            skip=partial,
            step=int(ck["step"]),
            seconds=float(ck.get("seconds", 0.0)),
            sessions=int(ck.get("sessions", 1)),
            counts={k: int(v) for k, v in ck.get("mask_counts", cls().counts).items()},
        )


def prepare_run(
    cfg: Config, run_dir: Path, resume: bool, overwrite: bool, writer: bool = True
) -> dict | None:
    """Check ``run_dir`` before anything is written; the checkpoint to resume from, or None.

    A new run refuses a folder holding a run unless ``overwrite`` (checked by the ``writer``,
    rank 0, which holds the lock); ``resume`` loads and checks the checkpoint against ``cfg``
    (CheckpointMismatch names the differences)."""
    ckpt = run_dir / CHECKPOINT
    if not resume:
        if writer:
            check_new_run(run_dir, overwrite)
        return None
    return load_checkpoint(ckpt, cfg) if ckpt.exists() else None


def nothing_left(cfg: Config, run_dir: Path, ck: dict | None) -> str | None:
    """Why a resume has no step left to train (None when it has)."""
    if ck is None:
        return None
    start, tc = StartPoint.of(ck), cfg.train
    if start.epoch < tc.epochs and not (tc.max_steps and start.step >= tc.max_steps):
        return None
    return (
        f"{run_dir}: nothing to do: the run already stopped at step {start.step} "
        f"({start.epoch} of train.epochs = {tc.epochs} epochs done, train.max_steps = "
        f"{tc.max_steps or 'none'}); raise train.epochs or train.max_steps "
        f"(--resume --set train.max_steps=N) to continue it"
    )


def batches_per_epoch(n_clips: int, local_batch: int, world_size: int) -> int:
    """The DataLoader length of one rank's share (DistributedSampler, drop_last rules)."""
    n = n_clips // world_size
    return n // local_batch if n > local_batch else math.ceil(n / local_batch)
