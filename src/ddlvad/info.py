"""``ddlvad info``: what a dataset root holds."""

from __future__ import annotations

import cv2

from ddlvad.config import Config
from ddlvad.data.layouts import VideoRecord
from ddlvad.data.sources import open_source
from ddlvad.pipeline import open_dataset


def _resolution(rec: VideoRecord) -> list[int] | None:
    src = open_source(rec.path)
    img = src.read(0)
    return [int(img.shape[1]), int(img.shape[0])]


def split_info(records: list[VideoRecord]) -> dict:
    res = sorted({tuple(_resolution(r)) for r in records}) if records else []
    out = {
        "videos": len(records),
        "frames": int(sum(r.n_frames for r in records)),
        "resolution": [list(r) for r in res] if len(res) != 1 else list(res[0]),
    }
    labelled = [r for r in records if r.labels is not None]
    if labelled:
        out["labelled_videos"] = len(labelled)
        out["anomalous_frames"] = int(sum(int(r.labels.sum()) for r in labelled))
    out["pixel_masks"] = any(r.mask_dir is not None for r in records)
    return out


def dataset_info(cfg: Config) -> dict:
    ds = open_dataset(cfg)
    return {
        "root": str(ds.root),
        "layout": ds.layout,
        "opencv": cv2.__version__,
        "train": split_info(ds.train),
        "test": split_info(ds.test),
    }
