"""``ddlvad info``: what a dataset root holds (layout; per split videos, frames, resolution,
fps, anomalous frames, pixel masks), as a JSON-ready dict."""

from __future__ import annotations

import cv2

from ddlvad.config import Config
from ddlvad.data.layouts import VideoRecord, list_scenes
from ddlvad.data.loading import open_dataset
from ddlvad.data.sources import open_source


def _one_or_all(values: list) -> object:
    return values[0] if len(values) == 1 else values


def split_info(records: list[VideoRecord]) -> dict:
    """Counts and sizes of one split; decodes at most one frame per frame folder."""
    sources = [open_source(r.path) for r in records]
    res = sorted({tuple(s.resolution) for s in sources})
    fps = sorted({round(float(s.fps), 3) for s in sources if s.fps})
    out: dict = {
        "videos": len(records),
        "frames": int(sum(r.n_frames for r in records)),
        "resolution": _one_or_all([list(r) for r in res]),  # [width, height]
    }
    if fps:
        out["fps"] = _one_or_all(fps)
    labelled = [r for r in records if r.labels is not None]
    if labelled:
        out["labelled_videos"] = len(labelled)
        out["anomalous_frames"] = int(sum(int(r.labels.sum()) for r in labelled))
    out["pixel_masks"] = any(r.has_masks for r in records)
    if out["pixel_masks"]:
        out["videos_with_pixel_masks"] = sum(r.has_masks for r in records)
    return out


def dataset_info(cfg: Config) -> dict:
    ds = open_dataset(cfg)
    out: dict = {"root": str(ds.root), "layout": ds.layout}
    scenes = list_scenes(cfg.data.root, ds.layout)
    if scenes:
        out["scenes"] = scenes
    if cfg.data.scene:
        out["scene"] = cfg.data.scene
    out.update(opencv=cv2.__version__, train=split_info(ds.train), test=split_info(ds.test))
    return out
