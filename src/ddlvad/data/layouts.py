"""Dataset layouts -> lists of VideoRecord (an index; loading is the cache's job)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddlvad.data import labels as L
from ddlvad.data.sources import SourceError, list_images, natural_key


@dataclass
class VideoRecord:
    name: str
    path: Path  # frame folder or video file
    split: str  # "train" | "test"
    n_frames: int
    labels: np.ndarray | None = None  # (n_frames,) 0/1, test split
    mask_dir: Path | None = None  # pixel masks, one image per frame, when shipped


@dataclass
class Dataset:
    root: Path
    layout: str
    train: list[VideoRecord]
    test: list[VideoRecord]


def load_pixel_masks(rec: VideoRecord, height: int, width: int) -> np.ndarray | None:
    """(n_frames, height, width) bool pixel masks of a test video, or None when not shipped."""
    if rec.mask_dir is None:
        return None
    from ddlvad.data.sources import FrameFolder, to_working

    src = FrameFolder(rec.mask_dir)
    if len(src) != rec.n_frames:
        raise SourceError(f"{rec.mask_dir}: {len(src)} mask images but {rec.n_frames} frames")
    return np.stack([to_working(m, height, width, 1)[..., 0] > 127 for m in src])


def _frame_videos(folder: Path, split: str) -> list[VideoRecord]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: missing; expected one sub-folder of frames per video")
    subs = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    if not subs:
        raise SourceError(f"{folder}: empty folder, expected one sub-folder of frames per video")
    return [VideoRecord(p.name, p, split, len(list_images(p))) for p in subs]


def _range_labels(root: Path, name_hint: str) -> tuple[Path, list] | None:
    for p in sorted(root.glob("*.mat")):
        return p, L.read_range_mat(p)
    for p in sorted(root.glob("*.m")):
        return p, L.read_ucsd_m(p)
    return None


def load_frames_layout(root: Path) -> Dataset:
    """``<root>/{training,testing}/frames/<video>/<frame>.jpg`` + ``<name>.mat`` / ``*.m``."""
    train = _frame_videos(root / "training" / "frames", "train")
    test = _frame_videos(root / "testing" / "frames", "test")
    masks = root / "testing" / "masks"
    for rec in test:
        if (masks / rec.name).is_dir():
            rec.mask_dir = masks / rec.name
    found = _range_labels(root, root.name)
    if found is not None:
        src, ranges = found
        if len(ranges) != len(test):
            raise SourceError(f"{src}: {len(ranges)} label entries but {len(test)} test videos")
        for rec, r in zip(test, ranges, strict=True):
            rec.labels = L.ranges_to_labels(r, rec.n_frames)
            if r and max(e for _, e in r) > rec.n_frames:
                raise SourceError(
                    f"{src}: video {rec.name} labels reach frame {max(e for _, e in r)} "
                    f"but the video has {rec.n_frames} frames"
                )
    return Dataset(root, "frames", train, test)


LAYOUTS = {"frames": load_frames_layout}


def detect_layout(root: Path) -> str:
    if (root / "training" / "frames").is_dir() and (root / "testing" / "frames").is_dir():
        return "frames"
    raise SourceError(
        f"{root}: unknown dataset layout; expected {{training,testing}}/frames/<video>/ "
        f"(or pass --data with one of {sorted(LAYOUTS)})"
    )


def load_dataset(root: str | Path, layout: str = "auto", scene: str = "") -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: dataset root not found")
    name = detect_layout(root) if layout in ("auto", "", None) else layout
    if name not in LAYOUTS:
        raise SourceError(f"unknown layout {name!r}; choose from {sorted(LAYOUTS)}")
    return LAYOUTS[name](root)
