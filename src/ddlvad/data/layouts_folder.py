"""The ``folder`` layout: a user's own footage, videos and/or frame folders in any mix.

Videos are the video files (mp4/avi/mkv/...) and the sub-folders that directly hold frames
(jpg/png/tif/bmp) in ``<root>``; a ``<root>`` that itself holds frames is one video. Names
are file stems / folder names and must be unique. Hidden entries are skipped.

Splits, labels:
  - Labels are optional: ``<root>/labels.csv`` (or the only ``*.csv`` in ``<root>``), rows
    ``video,start,end`` with 1-based inclusive frame numbers (as in the UCSD label files), a
    header row allowed, several rows per video allowed. A row ``video,,`` lists a test video
    with no anomaly.
  - Without split folders: the videos named in the CSV are the test split, all others are
    training videos (footage assumed normal). Without a CSV every video is a training video
    and the test split is empty.
  - With split folders ``<root>/{train,training}/`` and/or ``<root>/{test,testing}/``, the
    videos inside them form the splits. With a CSV, every test video gets labels (all 0 when
    it has no row), and every CSV name must be a test video; without one, test labels are None.

Scenes: a camera id is the part of a video's name before the first '_' (``cam1_0003`` ->
``cam1``); when no name holds a '_' there is no grouping. ``scene`` keeps one camera.
"""

from __future__ import annotations

from pathlib import Path

from ddlvad.data import labels as L
from ddlvad.data.records import (
    Dataset,
    VideoRecord,
    is_source,
    pick_scene,
    sorted_paths,
    source_record,
)
from ddlvad.data.sources import IMAGE_EXTS, VIDEO_EXTS, SourceError, has_images

SPLIT_DIRS = {"train": ("train", "training"), "test": ("test", "testing")}
WHAT = f"video files ({'/'.join(VIDEO_EXTS)}) or sub-folders of frames ({'/'.join(IMAGE_EXTS)})"


def split_dirs(root: Path) -> dict[str, Path]:
    out = {}
    for split, names in SPLIT_DIRS.items():
        for n in names:
            if (root / n).is_dir():
                out[split] = root / n
                break
    return out


def list_sources(folder: Path) -> list[Path]:
    """The videos of one folder: the folder itself when it holds frames, else its children."""
    if has_images(folder):
        return [folder]
    return sorted_paths([p for p in folder.iterdir() if is_source(p)])


def is_folder(root: Path) -> bool:
    return bool(list_sources(root)) or any(list_sources(d) for d in split_dirs(root).values())


def find_csv(root: Path) -> Path | None:
    if (root / "labels.csv").is_file():
        return root / "labels.csv"
    csvs = sorted_paths([p for p in root.glob("*.csv") if p.is_file()])
    if len(csvs) > 1:
        names = ", ".join(p.name for p in csvs)
        raise SourceError(
            f"{root}: several CSV files ({names}); expected one labels.csv of video,start,end rows"
        )
    return csvs[0] if csvs else None


def _records(paths: list[Path], split: str) -> list[VideoRecord]:
    return [source_record(p, split) for p in paths]


def _by_name(records: list[VideoRecord]) -> dict[str, VideoRecord]:
    """Look-up by name and by file name (a CSV may write ``cam1.mp4`` or ``cam1``)."""
    out: dict[str, VideoRecord] = {}
    for rec in records:
        if rec.name in out:
            raise SourceError(
                f"{rec.path}: video name {rec.name!r} also used by {out[rec.name].path}; "
                f"expected unique names"
            )
        out[rec.name] = rec
    out.update({rec.path.name: rec for rec in records})
    return out


def _label(rec: VideoRecord, ranges: L.Ranges, csv: Path) -> None:
    L.check_ranges(ranges, rec.n_frames, csv, rec.name)
    rec.labels = L.ranges_to_labels(ranges, rec.n_frames)


def _apply_csv(
    csv: Path, train: list[VideoRecord], test: list[VideoRecord], split_mode: bool
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    rows = L.read_ranges_csv(csv)
    pool = _by_name(test if split_mode else train)
    where = "test videos" if split_mode else "videos"
    for video in rows:
        if video not in pool:
            known = ", ".join(sorted({r.name for r in pool.values()})) or "none"
            raise SourceError(f"{csv}: video {video!r} is not one of the {where} ({known})")
    named = {id(pool[v]) for v in rows}
    if not split_mode:
        test = [r for r in train if id(r) in named]
        train = [r for r in train if id(r) not in named]
    for rec in test:
        rec.split = "test"
        ranges = [r for v, rs in rows.items() if pool.get(v) is rec for r in rs]
        _label(rec, ranges, csv)
    return train, test


def load_folder(root: Path, scene: str = "") -> Dataset:
    """Any folder of videos or frame folders (see the module docstring)."""
    dirs = split_dirs(root)
    if dirs:
        train = _records(list_sources(dirs["train"]) if "train" in dirs else [], "train")
        test = _records(list_sources(dirs["test"]) if "test" in dirs else [], "test")
    else:
        train, test = _records(list_sources(root), "train"), []
    if not train and not test:
        raise SourceError(f"{root}: empty folder; expected {WHAT}")
    _by_name(train), _by_name(test)  # names may repeat across splits, not within one
    grouped = any("_" in r.name for r in train + test)
    for rec in train + test:
        rec.scene = rec.name.split("_", 1)[0] if grouped else ""
    csv = find_csv(root)
    if csv is not None:
        train, test = _apply_csv(csv, train, test, bool(dirs))
    train, test = pick_scene((train, test), scene, root)
    return Dataset(root, "folder", train, test)
