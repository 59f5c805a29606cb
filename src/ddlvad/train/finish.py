"""The end-of-training steps, after the last optimiser step (``resume.FINISH_STEPS``).

In order: the BatchNorm statistics of the last weights (and of the weight EMA) re-estimated
on clean training clips, stored in the checkpoint (``ema.refresh_run``); the alert threshold
calibrated on the held-out frames (``threshold.json``); the summary (``train_summary.json``),
written last, so that a run holding it is finished. Each step is deterministic, so a resume
that redoes the missing ones (``resume.finish_todo``) writes what an uninterrupted run would.
The sigma plot is drawn by the callers that show results (``report.plots.plot_run_sigma``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ddlvad.config import Config
from ddlvad.io import atomic_write_json
from ddlvad.rundir import THRESHOLD, TRAIN_SUMMARY, load_trained
from ddlvad.train.calibrate import write_threshold
from ddlvad.train.data import TrainingVideos
from ddlvad.train.distributed import DistContext, barrier
from ddlvad.train.ema import refresh_run
from ddlvad.train.resume import FINISH_STEPS, StartPoint


def run_summary(
    info: dict[str, Any], net: nn.Module, totals: StartPoint, ctx: DistContext
) -> dict[str, Any]:
    """train_summary.json: the data, the totals over every session, the learned sigma."""
    creator = net.creator
    sigma = float(creator.sigma().detach()) if creator.enabled else None
    summary = {
        **info,
        "steps": totals.step,
        "seconds": round(totals.seconds, 1),
        "sessions": totals.sessions,
        "sigma": sigma,
        "mask_counts": totals.counts,
        "params": sum(p.numel() for p in net.model.parameters()),
        "world_size": ctx.world_size,
    }
    if ctx.enabled:  # the learned l is one parameter: every rank must hold the same value
        per_rank: list = [None] * ctx.world_size
        torch.distributed.all_gather_object(per_rank, sigma)
        summary["sigma_per_rank"] = per_rank
    return summary


def finish_run(
    cfg: Config,
    run_dir: Path,
    ctx: DistContext,
    summary: dict[str, Any],
    clips,
    data: TrainingVideos,
    todo: tuple[str, ...] = FINISH_STEPS,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the end-of-training steps ``todo`` (a tail of ``FINISH_STEPS``) on rank 0, each
    with a progress bar when ``progress``; the other ranks wait. Returns ``summary``."""
    if ctx.is_main:
        if "bn" in todo:
            refresh_run(run_dir, cfg, clips, progress=progress)
        if "threshold" in todo:
            _, scorer = load_trained(run_dir, cfg, ctx.device)
            # the summary, where engine_for_run reads frame_mean, is not written yet
            mean = summary["frame_mean"] if cfg.score.gain else None
            write_threshold(
                run_dir,
                cfg,
                scorer,
                ctx.device,
                progress=progress,
                videos=data.calibration,
                frame_mean=mean,
            )
        atomic_write_json(run_dir / TRAIN_SUMMARY, summary)
    # the other ranks wait for rank 0's writes: a rank that tore its process group down while
    # rank 0 still held it aborted at exit now and then ("terminate called without an
    # active exception"; seen once in the DDP test's runs, cause not proven)
    barrier(ctx)
    return summary


def drop_finish_outputs(run_dir: Path) -> None:
    """Remove the end-of-training files of earlier weights before new weights are saved: a
    threshold or summary of other weights must never pass for this checkpoint's."""
    for name in (TRAIN_SUMMARY, THRESHOLD):  # the finished marker first
        (run_dir / name).unlink(missing_ok=True)
