"""The training data of a run: the training videos, their held-out tails, and the clips.

``training_videos`` opens the dataset once and splits each video into the frames training
fits (``fit``) and the last ``calib.holdout`` of its frames (``held``), kept out of training
for the threshold calibration. ``make_clips`` turns the fit frames into T-frame training
clips, each with the mask of one tracked object for the pseudo-anomalies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ddlvad.config import Config
from ddlvad.data.layouts import VideoRecord, check_clip_length
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.objects.masks import MaskPicker
from ddlvad.objects.store import train_tracks
from ddlvad.scoring.gain import training_brightness
from ddlvad.train.clips import TrainClips


def split_holdout(
    videos: dict[str, np.ndarray], holdout: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(fit, held): each video's first ``1 - holdout`` of frames and its last ``holdout``.

    ``holdout = 0`` returns ``(videos, {})``. At least one frame of each video is held out."""
    if holdout <= 0:
        return videos, {}
    if holdout >= 1:
        raise ValueError(f"calib.holdout must lie in [0, 1), got {holdout}")
    fit, held = {}, {}
    for name, v in videos.items():
        n = len(v)
        k = min(max(int(round(n * holdout)), 1), n - 1) if n > 1 else 0
        if k == 0:
            raise ValueError(f"video {name}: {n} frame(s), too short to hold any out")
        fit[name], held[name] = v[: n - k], v[n - k :]
    return fit, held


@dataclass
class TrainingVideos:
    """A run's training split: records, whole videos, and their fit / held-out frames."""

    records: list[VideoRecord]
    videos: dict[str, np.ndarray]  # {name: (N, H, W, C) uint8}
    fit: dict[str, np.ndarray]
    held: dict[str, np.ndarray]

    @property
    def calibration(self) -> dict[str, np.ndarray]:
        """The normal frames the threshold is calibrated on: the held-out tails, or the
        training frames themselves when nothing is held out."""
        return self.held if self.held else self.fit


def training_videos(cfg: Config, progress: bool = False) -> TrainingVideos:
    """Open the dataset, load its training videos and split off the held-out tails."""
    ds = open_dataset(cfg)
    if not ds.train:
        raise ValueError(f"{cfg.data.root}: no training videos (layout {ds.layout})")
    check_clip_length(ds.train, cfg.model_T)
    videos = load_videos(ds.train, cfg, progress)
    fit, held = split_holdout(videos, cfg.calib.holdout)
    return TrainingVideos(ds.train, videos, fit, held)


def make_clips(
    cfg: Config, progress: bool, data: TrainingVideos | None = None
) -> tuple[TrainClips, dict]:
    """Training clips over the fit frames (``data``, else loaded now) and a summary dict."""
    data = data or training_videos(cfg, progress)
    T = cfg.model_T
    # the mean grey level that score.gain calibrates test footage to
    info: dict[str, Any] = {
        "train_videos": len(data.videos),
        "frame_mean": training_brightness(data.videos),
    }
    picker = None
    if cfg.pseudo.mode != "none":
        tracks, meta, path = train_tracks(data.records, data.videos, cfg, progress)
        picker = MaskPicker(tracks, cfg.pseudo.no_track, cfg.pseudo.margin)
        lengths = {k: len(v) for k, v in data.fit.items()}
        info.update(
            tracks=str(path),
            boxes_per_frame=meta.get("boxes_per_frame"),
            full_track_share=picker.coverage(lengths, T),
        )
    fit = data.fit
    tc = cfg.train
    clips = TrainClips(
        list(fit.values()), T, picker, names=list(fit), seed=tc.seed, balance=tc.balance,
        shift=tc.shift,
    )  # fmt: skip
    info["clips"] = len(clips)
    return clips, info
