"""How training stops early: a non-finite loss or weights, or SIGINT / SIGTERM, each as one
line that names the run and the step, and says what the checkpoint on disk holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ddlvad.rundir import CHECKPOINT


class NonFiniteLoss(RuntimeError):
    """Training produced NaN/inf (loss or weights); the last finite checkpoint is kept."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C (``ddlvad train`` installs the handler) so that training
    stops the same way: one line saying where ``--resume`` goes on (outside the training
    loop, ``errors.run_entry``'s one line naming it)."""

    signal_name = "SIGTERM"


class TrainingStopped(RuntimeError):
    """Training was stopped by SIGINT or SIGTERM; the message says where a resume goes on."""


@dataclass
class Progress:
    """Where a training session stands, for the line printed when a signal stops it."""

    step: int = 0  # steps done
    saved: int | None = None  # the step checkpoints/last.pt holds
    finishing: bool = False  # in the end-of-training steps


def stopped_line(run_dir: Path, where: Progress, e: KeyboardInterrupt) -> str:
    """What a signal stopped and where ``--resume`` goes on from."""
    sig = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
    if where.saved is None:
        return f"{run_dir}: stopped by {sig} before the first step; nothing was trained"
    if where.finishing:
        return (
            f"{run_dir}: stopped by {sig} in the end-of-training steps (training done at step "
            f"{where.saved}); rerun the command with --resume to finish them"
        )
    return (
        f"{run_dir}: stopped by {sig} at step {where.step}; rerun the command with --resume "
        f"to go on from step {where.saved} ({CHECKPOINT})"
    )


def non_finite(module: nn.Module) -> list[str]:
    """The floating-point parameters and buffers of ``module`` that hold NaN or inf."""
    return [
        name
        for name, t in module.state_dict().items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
