"""Frame-folder layouts: the common re-packaged layout and the original UCSD release.

``frames`` (UCSD Ped1/Ped2, Avenue, synthetic scenes as most public code ships them)::

    <root>/{training,testing}/frames/<video>/<frame>.jpg
    labels, first found in <root> (then <root>/testing):
      <name>.mat             gt: 1xV cell of [start; end] (1-based, inclusive);
                             <root name>.mat is preferred when there are several
      frame_labels_<n>.npy   1-D 0/1 labels of all test frames, videos concatenated in order
      *.m                    UCSD's script (TestVideoFile{end+1}.gt_frame = [61:180];)
    <root>/testing/masks/<video>/<frame>.png   pixel masks, when present

``ucsd`` (the original release; <root> may also be the folder holding one UCSDpedN)::

    UCSDped2/{Train,Test}/{Train001,Test001}/001.tif
    UCSDped2/Test/UCSDped2.m        frame labels
    UCSDped2/Test/Test001_gt/001.bmp  pixel masks (all or some test videos)
"""

from __future__ import annotations

from pathlib import Path

from ddlvad.data import labels as L
from ddlvad.data.records import (
    Dataset,
    VideoRecord,
    attach_labels,
    attach_ranges,
    frame_folder_records,
    sorted_paths,
)
from ddlvad.data.sources import SourceError, list_images

FRAMES_WHAT = "one sub-folder of frames per video ({training,testing}/frames/<video>/000.jpg)"


def _first(paths: list[Path], prefer: str) -> Path | None:
    paths = sorted_paths(paths)
    for p in paths:
        if p.stem.lower() == prefer.lower():
            return p
    return paths[0] if paths else None


def find_frame_labels(root: Path) -> Path | None:
    """The label file of a frames root: ``.mat``, then ``frame_labels_*.npy``, then ``.m``."""
    for d in (root, root / "testing"):
        if not d.is_dir():
            continue
        for pattern in ("*.mat", "frame_labels*.npy", "*.m"):
            found = _first([p for p in d.glob(pattern) if p.is_file()], root.name)
            if found is not None:
                return found
    return None


def apply_label_file(path: Path, test: list[VideoRecord]) -> None:
    """Read any supported frame-label file and set the labels of the test records."""
    if path.suffix == ".npy":
        y = L.read_frame_npy(path)
        parts = L.split_concatenated(y, [r.n_frames for r in test], path)
        for rec, part in zip(test, parts, strict=True):
            attach_labels(rec, part, path)
    elif path.suffix == ".mat":
        attach_ranges(test, L.read_range_mat(path), path)
    else:
        attach_ranges(test, L.read_ucsd_m(path), path)


def load_frames_layout(root: Path, scene: str = "") -> Dataset:
    """``<root>/{training,testing}/frames/<video>/<frame>.jpg`` + a label file."""
    train = frame_folder_records(root / "training" / "frames", "train", FRAMES_WHAT)
    test = frame_folder_records(root / "testing" / "frames", "test", FRAMES_WHAT)
    masks = root / "testing" / "masks"
    for rec in test:
        if (masks / rec.name).is_dir():
            rec.mask_dir = masks / rec.name
    found = find_frame_labels(root)
    if found is not None:
        apply_label_file(found, test)
    return Dataset(root, "frames", train, test)


def is_ucsd(root: Path) -> bool:
    return (root / "Train").is_dir() and (root / "Test").is_dir()


def ucsd_root(root: Path) -> Path:
    """``root`` itself or its one ``UCSDpedN``-like child holding ``Train/`` and ``Test/``."""
    if is_ucsd(root):
        return root
    subs = sorted_paths([p for p in root.iterdir() if p.is_dir() and is_ucsd(p)])
    if len(subs) == 1:
        return subs[0]
    if subs:
        names = ", ".join(p.name for p in subs)
        raise SourceError(
            f"{root}: holds several UCSD datasets ({names}); pass --root {subs[-1]} (one of them)"
        )
    raise SourceError(
        f"{root}: missing Train/ and Test/; expected the original UCSD layout "
        f"UCSDped2/{{Train,Test}}/{{Train001,Test001}}/001.tif"
    )


def _ucsd_videos(folder: Path, split: str) -> list[VideoRecord]:
    what = f"one sub-folder of .tif frames per video ({folder.name}001/001.tif)"
    if not folder.is_dir():
        raise SourceError(f"{folder}: missing; expected {what}")
    subs = [
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.endswith("_gt") and not p.name.startswith(".")
    ]
    if not subs:
        raise SourceError(f"{folder}: empty folder, expected {what}")
    return [VideoRecord(p.name, p, split, len(list_images(p))) for p in sorted_paths(subs)]


def load_ucsd(root: Path, scene: str = "") -> Dataset:
    """The original UCSD Ped1/Ped2 release (see the module docstring)."""
    base = ucsd_root(root)
    train = _ucsd_videos(base / "Train", "train")
    test = _ucsd_videos(base / "Test", "test")
    for rec in test:
        gt = base / "Test" / f"{rec.name}_gt"
        if gt.is_dir():
            rec.mask_dir = gt
    found = _first(list((base / "Test").glob("*.m")) or list(base.glob("*.m")), base.name)
    if found is not None:
        attach_ranges(test, L.read_ucsd_m(found), found)
    return Dataset(base, "ucsd", train, test)
