"""The dataset index: one VideoRecord per video, grouped into a Dataset.

Building an index lists files and reads label files; it decodes no frames (video lengths
come from the container, and are measured exactly only when a label file disagrees).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddlvad.data import labels as L
from ddlvad.data.sources import (
    SourceError,
    SourceWarning,
    VideoFile,
    has_images,
    list_images,
    list_videos,
    natural_key,
    open_source,
)


@dataclass
class VideoRecord:
    name: str
    path: Path  # frame folder or video file
    split: str  # "train" | "test"
    n_frames: int
    labels: np.ndarray | None = None  # (n_frames,) 0/1, test split
    mask_dir: Path | None = None  # pixel masks, one image per frame, when shipped
    mask_file: Path | None = None  # pixel masks in one file: Avenue .mat (volLabel) or .npy
    scene: str = ""  # scene / camera id, when the layout has one

    @property
    def has_masks(self) -> bool:
        return self.mask_dir is not None or self.mask_file is not None


@dataclass
class Dataset:
    root: Path
    layout: str
    train: list[VideoRecord]
    test: list[VideoRecord]


def sorted_paths(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: natural_key(p.name))


def frame_folder_records(folder: Path, split: str, what: str) -> list[VideoRecord]:
    """One record per sub-folder of frames; ``what`` says what was expected, for errors."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: missing; expected {what}")
    subs = sorted_paths([p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")])
    if not subs:
        raise SourceError(f"{folder}: empty folder, expected {what}")
    return [VideoRecord(p.name, p, split, len(list_images(p))) for p in subs]


def video_file_records(folder: Path, split: str, what: str) -> list[VideoRecord]:
    """One record per video file directly in ``folder`` (name = file stem)."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: missing; expected {what}")
    files = list_videos(folder)
    if not files:
        raise SourceError(f"{folder}: no video files, expected {what}")
    return [VideoRecord(p.stem, p, split, len(VideoFile(p))) for p in files]


def source_record(path: Path, split: str) -> VideoRecord:
    """A record for a frame folder or a video file (name = folder name or file stem)."""
    src = open_source(path)
    return VideoRecord(path.name if path.is_dir() else path.stem, path, split, len(src))


def is_source(path: Path) -> bool:
    """A video file or a folder that directly holds frames."""
    from ddlvad.data.sources import is_video

    return is_video(path) or (not path.name.startswith(".") and has_images(path))


def exact_length(rec: VideoRecord, n_labels: int) -> int:
    """Frame count to check labels against: a video container's count can be wrong, so on a
    mismatch the video is decoded once to count its frames exactly."""
    if n_labels != rec.n_frames and rec.path.is_file():
        rec.n_frames = VideoFile(rec.path).count_frames()
    return rec.n_frames


def attach_labels(rec: VideoRecord, y: np.ndarray, source: str | Path) -> None:
    """Set ``rec.labels`` after checking one label per frame."""
    L.check_length(y, exact_length(rec, len(y)), source, rec.name)
    rec.labels = np.asarray(y, dtype=np.uint8)


def attach_ranges(records: list[VideoRecord], ranges: list[L.Ranges], source: Path) -> None:
    """Range lists in video order (one per test video) -> labels on each record."""
    if len(ranges) != len(records):
        raise SourceError(
            f"{source}: {len(ranges)} label entries but {len(records)} test videos; "
            f"expected one entry per test video, in order"
        )
    for rec, r in zip(records, ranges, strict=True):
        if r and max(e for _, e in r) > rec.n_frames:
            exact_length(rec, max(e for _, e in r))
        L.check_ranges(r, rec.n_frames, source, rec.name)
        rec.labels = L.ranges_to_labels(r, rec.n_frames)


def check_decoded(rec: VideoRecord, n: int) -> None:
    """Compare the frames decoded from ``rec`` with what its container and labels claim.

    Fewer frames than the container claims is a warning (a damaged or cut file); an error
    when labels or pixel masks need the full length."""
    need = len(rec.labels) if rec.labels is not None else None
    if need is not None and n != need:
        raise SourceError(
            f"{rec.path}: decoded {n} frames but its container claims {rec.n_frames} and its "
            f"labels need {need}; expected a complete video (the file may be cut or damaged)"
        )
    if n < rec.n_frames:
        warnings.warn(
            f"{rec.path}: decoded {n} frames but its container claims {rec.n_frames}; "
            f"the file may be cut or damaged, using the {n} decodable frames",
            SourceWarning,
            stacklevel=2,
        )


def pick_scene(
    records: tuple[list[VideoRecord], list[VideoRecord]], scene: str, root: Path
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Keep the records of one scene; SourceError listing the known scenes otherwise."""
    train, test = records
    known = sorted({r.scene for r in train + test if r.scene}, key=natural_key)
    if not scene:
        return train, test
    if scene not in known and scene.isdigit():
        scene = next((k for k in known if k.isdigit() and int(k) == int(scene)), scene)
    if scene not in known:
        raise SourceError(
            f"{root}: unknown scene {scene!r}; known scenes: {', '.join(known) or 'none'}"
        )
    return [r for r in train if r.scene == scene], [r for r in test if r.scene == scene]
