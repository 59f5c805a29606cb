"""A config's dataset: its index of videos (``open_dataset``) and their cached frames
(``load_videos``), loaded through the frame cache."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ddlvad.config import Config
from ddlvad.data.cache import FrameCache
from ddlvad.data.layouts import Dataset, VideoRecord, load_dataset
from ddlvad.data.records import check_decoded


def open_dataset(cfg: Config) -> Dataset:
    ds = load_dataset(cfg.data.root, cfg.data.layout, cfg.data.scene)
    if cfg.data.max_videos > 0:
        ds.train = ds.train[: cfg.data.max_videos]
        ds.test = ds.test[: cfg.data.max_videos]
    return ds


def frame_cache(cfg: Config, progress: bool = True) -> FrameCache:
    return FrameCache(cfg.data.cache_dir or None, progress=progress)


def load_videos(
    records: list[VideoRecord], cfg: Config, progress: bool = True
) -> dict[str, np.ndarray]:
    """{name: (N, H, W, C) uint8} from the frame cache; checks each decoded length against
    the container and the labels (``check_decoded``)."""
    cache = frame_cache(cfg, False)  # one bar over the videos: per-video bars flashed 0/N
    d = cfg.data
    out = {}
    for r in tqdm(records, desc="frames", unit="video", disable=not progress):
        out[r.name] = cache.load(r.path, d.height, d.width, d.channels)
        check_decoded(r, len(out[r.name]))
    return out


def fingerprints(records: list[VideoRecord], cfg: Config) -> dict[str, str]:
    cache = frame_cache(cfg, False)
    d = cfg.data
    return {r.name: cache.entry_path(r.path, d.height, d.width, d.channels).stem for r in records}
