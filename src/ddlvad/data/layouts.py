"""Dataset layouts -> a Dataset index of VideoRecords (decoding frames is the cache's job).

Layouts (each documented in its module):
  - ``frames``: ``{training,testing}/frames/<video>/000.jpg`` + .mat/.npy/.m (layouts_frames)
  - ``ucsd``: ``UCSDped2/{Train,Test}/Test001/001.tif``, ``UCSDped2.m``, ``Test001_gt/``
    (layouts_frames)
  - ``avenue``: ``{training,testing}_videos/NN.avi`` + ``N_label.mat`` (layouts_video)
  - ``shanghaitech``: ``training/videos/*.avi``, ``testing/frames/``, ``testing/test_*_mask/``
    (layouts_video)
  - ``folder``: any folder of videos / frame folders, optional ``labels.csv`` (layouts_folder)

``detect_layout`` tries them in the order shanghaitech, frames, avenue, ucsd, folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ddlvad.data import labels as L
from ddlvad.data.layouts_folder import is_folder, list_sources, load_folder, split_dirs
from ddlvad.data.layouts_frames import is_ucsd, load_frames_layout, load_ucsd
from ddlvad.data.layouts_video import (
    has_frames_layout,
    is_avenue,
    is_shanghaitech,
    load_avenue,
    load_shanghaitech,
    scene_of,
)
from ddlvad.data.records import Dataset, VideoRecord, pick_scene
from ddlvad.data.sources import FrameFolder, SourceError, natural_key

__all__ = [
    "LAYOUTS",
    "Dataset",
    "VideoRecord",
    "check_clip_length",
    "detect_layout",
    "list_scenes",
    "load_dataset",
    "load_pixel_masks",
]

LAYOUTS: dict[str, Callable[[Path, str], Dataset]] = {
    "frames": load_frames_layout,
    "ucsd": load_ucsd,
    "avenue": load_avenue,
    "shanghaitech": load_shanghaitech,
    "folder": load_folder,
}
ALIASES = {"": "auto", "ped1": "auto", "ped2": "auto", "synthetic": "frames"}

EXPECTED = (
    "{training,testing}/frames/<video>/ (frames), UCSDped2/{Train,Test}/ (ucsd), "
    "training_videos/ + testing_videos/ (avenue), training/videos/ + testing/frames/ "
    "(shanghaitech), or video files / frame folders (folder)"
)


def detect_layout(root: Path) -> str:
    """The name of the layout found under ``root``; SourceError when none fits."""
    root = Path(root)
    if is_shanghaitech(root):
        return "shanghaitech"
    if has_frames_layout(root):
        return "frames"
    if is_avenue(root):
        return "avenue"
    if is_ucsd(root) or any(p.is_dir() and is_ucsd(p) for p in root.iterdir()):
        return "ucsd"
    if is_folder(root):
        return "folder"
    empty = "empty folder, " if not any(root.iterdir()) else ""
    raise SourceError(
        f"{root}: {empty}unknown dataset layout; expected {EXPECTED} "
        f"(or pass --data with one of {sorted(LAYOUTS)})"
    )


def resolve_layout(root: Path, layout: str | None) -> str:
    name = ALIASES.get(layout or "", layout or "auto")
    if name == "auto":
        return detect_layout(root)
    if name not in LAYOUTS:
        raise SourceError(f"unknown layout {name!r}; choose from {sorted(LAYOUTS)} or 'auto'")
    return name


def load_dataset(root: str | Path, layout: str = "auto", scene: str = "") -> Dataset:
    """Index the dataset under ``root``; ``scene`` keeps one scene / camera (ShanghaiTech,
    folder) and is an error naming the known scenes when it matches none."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: dataset root not found")
    ds = LAYOUTS[resolve_layout(root, layout)](root, scene or "")
    if scene and not any(r.scene for r in ds.train + ds.test):
        pick_scene((ds.train, ds.test), scene, root)  # raises: this layout has no scenes
    return ds


def list_scenes(root: str | Path, layout: str = "auto") -> list[str]:
    """Scene ids (ShanghaiTech ``SS``) or camera ids (``folder``: the name before the first
    '_'); [] for layouts without scenes or a folder whose names hold no '_'."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: dataset root not found")
    name = resolve_layout(root, layout)
    if name == "shanghaitech":
        folders = [root / "training" / "videos", root / "training" / "frames"]
        folders.append(root / "testing" / "frames")
        names = [p.stem for d in folders if d.is_dir() for p in d.iterdir()]
        return sorted({s for s in map(scene_of, names) if s}, key=natural_key)
    if name == "folder":
        dirs = list(split_dirs(root).values()) or [root]
        names = [p.stem if p.is_file() else p.name for d in dirs for p in list_sources(d)]
        if not any("_" in n for n in names):
            return []
        return sorted({n.split("_", 1)[0] for n in names}, key=natural_key)
    return []


def check_clip_length(records: list[VideoRecord], T: int) -> None:
    """SourceError naming the file when T is even or a video is shorter than T."""
    if T < 1 or T % 2 == 0:
        raise SourceError(
            f"T = {T}: expected an odd clip length >= 1 (the model reconstructs the middle frame)"
        )
    for rec in records:
        if rec.n_frames < T:
            raise SourceError(
                f"{rec.path}: {rec.n_frames} frames, shorter than the clip length T = {T}; "
                f"expected at least T frames per video"
            )


def _binary_to_working(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) bool -> (height, width) bool, area-resized (a pixel is set if mostly covered)."""
    m = m.astype(np.uint8) * 255
    if m.shape != (height, width):
        m = cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA)
    return m > 127


def _raw_masks(f: Path) -> tuple[Path, int, Iterator[np.ndarray]]:
    """(source, count, (h, w) bool masks at source resolution) of a mask folder or file."""
    if f.is_dir():
        src = FrameFolder(f)
        return f, len(src), (img.max(axis=2) > 127 for img in src)
    if f.suffix == ".mat":
        masks = L.read_vollabel(f)
        return f, len(masks), (m != 0 for m in masks)
    arr = L.load_npy(f, mmap=True)
    if arr.ndim != 3:
        raise SourceError(f"{f}: array of shape {arr.shape}; expected (frames, H, W) masks")
    return f, len(arr), (np.asarray(m) != 0 for m in arr)


def load_pixel_masks(rec: VideoRecord, height: int, width: int) -> np.ndarray | None:
    """(n_frames, height, width) bool pixel masks of a test video, or None when not shipped.

    Covers mask image folders (UCSD ``Test001_gt/001.bmp``, synthetic ``masks/``), Avenue
    ``volLabel`` .mat files and ShanghaiTech (N, H, W) .npy files.
    """
    f = rec.mask_dir if rec.mask_dir is not None else rec.mask_file
    if f is None:
        return None
    source, n, masks = _raw_masks(f)
    if n != rec.n_frames:
        raise SourceError(
            f"{source}: {n} pixel masks but video {rec.name} has {rec.n_frames} frames; "
            f"expected one mask per frame"
        )
    out = np.zeros((n, height, width), dtype=bool)
    for i, m in enumerate(masks):
        out[i] = _binary_to_working(m, height, width)
    return out
