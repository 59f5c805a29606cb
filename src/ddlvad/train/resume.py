"""Where a training run starts: fresh, or from its checkpoint, checked before any write.

A checkpoint records the epoch it was saved in, the global step, and ``batch``: 0 when the
epoch completed, else the number of batches done when ``train.max_steps`` stopped it
mid-epoch (the RNG state then is the one from the start of that epoch). A resume continues
exactly where the run stopped, so raising ``train.max_steps`` or ``train.epochs`` on a
finished run continues it as if it had never stopped. Elapsed seconds and mask counts are
kept in the checkpoint too, so ``train_summary.json`` covers every session of the run. A new
run writes a checkpoint at step 0 before its first step, so a run that trained has one.

After the last optimiser step come the end-of-training steps (``FINISH_STEPS``), in this
order: the BatchNorm statistics re-estimated on clean clips (into the checkpoint), the
threshold calibration (``threshold.json``) and the summary (``train_summary.json``), written
last as the mark of a finished run. A resume of a run whose training is done redoes the first
missing one and every later one (``finish_todo``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlvad.checkpoint import ema_state, load_checkpoint
from ddlvad.config import RESUME_KEYS, Config, config_changes
from ddlvad.rundir import (
    CHECKPOINT,
    CONFIG,
    THRESHOLD,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    check_new_run,
    load_run_config,
)

# The end-of-training steps, in the order they run; the summary marks a finished run.
FINISH_STEPS = ("bn", "threshold", "summary")


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
        step = int(ck["step"])  # 0: written before the first step, nothing trained yet
        return cls(
            epoch=int(ck["epoch"]) + (0 if partial or not step else 1),
            skip=partial,
            step=step,
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
    (CheckpointMismatch names the differences), then ``cfg`` against the run's config.yaml
    (``check_resume_config``). A resume without a checkpoint starts the run afresh unless its
    log holds steps: it refuses rather than silently train them again."""
    ckpt = run_dir / CHECKPOINT
    if not resume:
        if writer:
            check_new_run(run_dir, overwrite)
        return None
    if not ckpt.exists():
        if steps := logged_steps(run_dir):
            raise FileNotFoundError(
                f"{ckpt}: not found, but {run_dir / TRAIN_LOG} records {steps} steps: a resume "
                f"would train them again from step 0; restore the checkpoint, or pass "
                f"--overwrite (instead of --resume) to train the run again from scratch"
            )
        return None
    ck = load_checkpoint(ckpt, cfg)
    check_resume_config(cfg, run_dir)
    return ck


def logged_steps(run_dir: Path) -> int:
    """The number of steps the run's train_log.csv records (0 when it has none)."""
    try:
        with (run_dir / TRAIN_LOG).open() as f:
            return max(sum(1 for line in f if line.strip()) - 1, 0)
    except OSError:
        return 0


def check_resume_config(cfg: Config, run_dir: Path) -> None:
    """ValueError when ``cfg`` changes a key of the run's config.yaml that a resume cannot
    change (any outside ``RESUME_KEYS``): the run would go on as another run would."""
    if not (run_dir / CONFIG).exists():
        return
    changed = config_changes(load_run_config(run_dir), cfg, ignore=RESUME_KEYS)
    if changed:
        raise ValueError(
            f"{run_dir / CONFIG}: --resume continues the run under this config, and the "
            f"config given changes {', '.join(changed)}; a resume may change only "
            f"{', '.join(RESUME_KEYS[1:])}. Start a new run (another --out, or --overwrite) "
            f"to train under another config"
        )


def finish_todo(run_dir: Path, ck: dict[str, Any]) -> tuple[str, ...]:
    """The end-of-training steps (``FINISH_STEPS``) still to do for a run whose training is
    done: the first one missing and every one after it (each depends on those before)."""
    done = (
        "last_bn" in ck and (ema_state(ck) is None or "ema_bn" in ck),
        (run_dir / THRESHOLD).exists(),
        (run_dir / TRAIN_SUMMARY).exists(),
    )
    return FINISH_STEPS[done.index(False) :] if False in done else ()


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
