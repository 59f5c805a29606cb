"""Alert threshold calibrated on normal footage, stored as ``<run>/threshold.json``.

The threshold is the ``calib.quantile`` quantile of the *alert score* of normal frames: the
raw patch-max score after the run's median filter (``score.median``), never min-max
normalised (normalisation needs the whole video, which a live stream never has). With
quantile q, about ``1 - q`` of normal frames score above it: q = 0.99 means roughly 1 frame in
100 of normal footage is flagged, i.e. 0.25 flagged frames per second at 25 fps. The median
filter groups those frames into a few ranges, so the number of distinct alerts is lower; both
are recorded in threshold.json.

Frames: the last ``calib.holdout`` fraction of each training video, kept out of training
(``held_out: true``); with ``holdout = 0``, the training frames themselves (``held_out:
false``), which the model has fitted, so the threshold comes out low and the false-alarm rate
on new normal footage will be higher than ``1 - q``.

For an existing run without threshold.json: ``ddlvad calibrate --run DIR`` (or
``python -m ddlvad.calibrate --run DIR``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ddlvad.config import Config
from ddlvad.io import atomic_write_json
from ddlvad.rundir import THRESHOLD
from ddlvad.scoring.backends import TorchForward
from ddlvad.scoring.engine import ScoreEngine, engine_for_run
from ddlvad.scoring.gain import Gain
from ddlvad.scoring.post import ranges_of
from ddlvad.scoring.protocol import ScoreProtocol
from ddlvad.train.data import training_videos


def calibrate(
    engine: ScoreEngine, cfg: Config, videos: dict[str, np.ndarray], progress: bool = False
) -> dict[str, Any]:
    """Score normal ``videos`` ({name: (N, H, W, C) uint8}) with ``engine`` and pick the
    alert threshold under its protocol (recorded with it, as the alert score's).

    Returns threshold (the ``cfg.calib.quantile`` quantile of median-filtered scores),
    quantile, frames, held_out (``cfg.calib.holdout > 0``), the share of those frames above
    the threshold and the number of alert ranges it would raise on them."""
    q = cfg.calib.quantile
    if not 0 < q < 1:
        raise ValueError(f"calib.quantile must lie in (0, 1), got {q}")
    if not videos:
        raise ValueError("calibrate: no frames to calibrate on")
    protocol = engine.protocol.alert()
    raw = {}
    total = sum(len(v) for v in videos.values())
    bar = tqdm(total=total, desc="threshold", unit="frame", disable=not progress, leave=False)
    with bar:
        for name, v in videos.items():
            raw[name] = engine.score_video(v)[0]
            bar.update(len(v))
    smoothed = {n: engine.pipeline.alert(r) for n, r in raw.items()}
    flat = np.concatenate(list(smoothed.values()))
    thr = float(np.quantile(flat, q))
    n_ranges = sum(len(ranges_of(s > thr)) for s in smoothed.values())
    return {
        "threshold": thr,
        "quantile": q,
        "frames": int(len(flat)),
        "held_out": cfg.calib.holdout > 0,
        "false_alarm_rate_on_calibration_frames": float(np.mean(flat > thr)),
        "alert_ranges_on_calibration_frames": int(n_ranges),
        "videos": len(raw),
        "holdout": cfg.calib.holdout,
        "threshold_raw": float(np.quantile(np.concatenate(list(raw.values())), q)),
        "score": f"raw patch-max score, median filter {protocol.median or 'off'}, no normalisation",
        # the protocol the threshold belongs to: a threshold means nothing under another
        **protocol.record(),
    }


def calibration_videos(cfg: Config, progress: bool = False) -> dict[str, np.ndarray]:
    """The normal frames a run calibrates on: held-out tails, or all training frames.

    Opens the dataset; training passes the frames its own setup split off instead."""
    return training_videos(cfg, progress).calibration


def run_engine(
    run_dir: str | Path,
    cfg: Config,
    model: torch.nn.Module,
    device,
    frame_mean: float | None = None,
) -> ScoreEngine:
    """The engine a run's threshold is calibrated with: the torch model in fp32 under the
    config's protocol. ``frame_mean``: the training footage's mean grey level for
    ``score.gain`` while the run's train_summary.json, where ``engine_for_run`` reads it, is
    not written yet (at the end of training)."""
    forward = TorchForward(model, "fp32", device)
    protocol = ScoreProtocol.from_config(cfg)
    if frame_mean is None:
        return engine_for_run(
            run_dir, protocol, forward, cfg.model_T, batch_size=cfg.score.batch_size
        )
    gain = Gain(frame_mean, protocol.gain) if protocol.gain else None
    return ScoreEngine(protocol, forward, cfg.model_T, batch_size=cfg.score.batch_size, gain=gain)


def write_threshold(
    run_dir: str | Path,
    cfg: Config,
    model: torch.nn.Module,
    device,
    progress: bool = False,
    videos: dict[str, np.ndarray] | None = None,
    frame_mean: float | None = None,
) -> dict[str, Any]:
    """Calibrate ``model`` on the run's normal frames (``videos``, else loaded from the
    dataset); write ``run_dir/threshold.json`` (``save_threshold``)."""
    if videos is None:
        videos = calibration_videos(cfg, progress)
    engine = run_engine(run_dir, cfg, model, device, frame_mean)
    return save_threshold(run_dir, calibrate(engine, cfg, videos, progress))


def save_threshold(run_dir: str | Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write ``calibrate``'s ``result`` as ``run_dir/threshold.json``; a non-finite threshold
    is never written (ValueError naming the file)."""
    path = Path(run_dir) / THRESHOLD
    if not math.isfinite(result["threshold"]):
        raise ValueError(
            f"{path}: not written: calibration on {result['frames']} frames gave threshold "
            f"{result['threshold']}, expected a finite number (the model's scores are not "
            f"finite: non-finite weights or BatchNorm statistics)"
        )
    atomic_write_json(path, result)
    return result
