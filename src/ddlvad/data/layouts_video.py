"""Layouts that ship video files: CUHK Avenue and ShanghaiTech Campus.

``avenue`` (the CUHK release)::

    <root>/training_videos/01.avi ...   <root>/testing_videos/01.avi ...
    <root>/ground_truth_demo/testing_label_mask/1_label.mat   volLabel: 1xN cell of (H, W) masks
    (a frame is anomalous when its mask is non-empty; the masks are the pixel ground truth)

  A re-packaged copy (``{training,testing}/frames/<video>/`` + a label file named after the
  dataset, e.g. ``avenue.mat``) loads through the ``frames`` layout when ``--data avenue`` is
  given; any other root is an error naming what was expected (``--data`` never falls back).

``shanghaitech``::

    <root>/training/videos/SS_VVV.avi     (or training/frames/SS_VVV/ when extracted)
    <root>/testing/frames/SS_VVVV/NNN.jpg
    <root>/testing/test_frame_mask/SS_VVVV.npy   (N,) 0/1 frame labels
    <root>/testing/test_pixel_mask/SS_VVVV.npy   (N, H, W) 0/1 pixel masks, when present

  ``scene`` ("01".."13", or "1") keeps one scene; the scene id is the name before the first '_'.
"""

from __future__ import annotations

from pathlib import Path

from ddlvad.data import labels as L
from ddlvad.data.layouts_frames import find_frame_labels, load_frames_layout
from ddlvad.data.records import (
    Dataset,
    VideoRecord,
    attach_labels,
    frame_folder_records,
    pick_scene,
    video_file_records,
)
from ddlvad.data.sources import SourceError


def has_frames_layout(root: Path) -> bool:
    return (root / "training" / "frames").is_dir() and (root / "testing" / "frames").is_dir()


def is_avenue(root: Path) -> bool:
    return (root / "training_videos").is_dir() or (root / "testing_videos").is_dir()


def avenue_label_dir(root: Path) -> Path | None:
    for d in (root / "ground_truth_demo" / "testing_label_mask", root / "testing_label_mask"):
        if d.is_dir():
            return d
    return None


AVENUE_WHAT = (
    "training_videos/NN.avi and testing_videos/NN.avi (+ ground_truth_demo/testing_label_mask/"
    "N_label.mat), or a re-packaged {training,testing}/frames/ copy with avenue.mat"
)
SHANGHAITECH_WHAT = (
    "training/videos/SS_VVV.avi (or training/frames/), testing/frames/SS_VVVV/ and "
    "testing/test_frame_mask/, or a re-packaged {training,testing}/frames/ copy with a "
    "shanghaitech label file"
)


def repackaged(root: Path, dataset: str) -> bool:
    """A ``frames`` layout whose label file is named after ``dataset`` (``avenue.mat``...)."""
    if not has_frames_layout(root):
        return False
    found = find_frame_labels(root)
    return found is not None and dataset in found.stem.lower()


def load_avenue(root: Path, scene: str = "") -> Dataset:
    """CUHK Avenue (see the module docstring)."""
    if not is_avenue(root):
        if repackaged(root, "avenue"):
            return load_frames_layout(root)
        raise SourceError(
            f"{root}: not a CUHK Avenue layout (--data avenue); expected {AVENUE_WHAT}"
        )
    train = video_file_records(root / "training_videos", "train", "training_videos/NN.avi")
    test = video_file_records(root / "testing_videos", "test", "testing_videos/NN.avi")
    labels = avenue_label_dir(root)
    for rec in test if labels is not None else []:
        stem = str(int(rec.name)) if rec.name.isdigit() else rec.name
        f = labels / f"{stem}_label.mat"
        if not f.is_file():
            raise SourceError(
                f"{f}: missing; expected a volLabel mask file for test video {rec.path}"
            )
        attach_labels(rec, L.vollabel_labels(f), f)
        rec.mask_file = f
    return Dataset(root, "avenue", train, test)


def is_shanghaitech(root: Path) -> bool:
    t = root / "testing"
    return (t / "test_frame_mask").is_dir() or (
        (root / "training" / "videos").is_dir() and (t / "frames").is_dir()
    )


def scene_of(name: str) -> str:
    return name.split("_", 1)[0] if "_" in name else ""


def _st_train(root: Path) -> list[VideoRecord]:
    frames = root / "training" / "frames"
    if frames.is_dir():
        return frame_folder_records(frames, "train", "training/frames/SS_VVV/NNN.jpg")
    return video_file_records(root / "training" / "videos", "train", "training/videos/SS_VVV.avi")


def load_shanghaitech(root: Path, scene: str = "") -> Dataset:
    """ShanghaiTech Campus (see the module docstring)."""
    masks = root / "testing" / "test_frame_mask"
    if not is_shanghaitech(root) and not repackaged(root, "shanghai"):
        raise SourceError(
            f"{root}: not a ShanghaiTech layout (--data shanghaitech); expected {SHANGHAITECH_WHAT}"
        )
    if not masks.is_dir() and repackaged(root, "shanghai"):
        ds = load_frames_layout(root)  # re-packaged copy with one concatenated label file
        for rec in ds.train + ds.test:
            rec.scene = scene_of(rec.name)
        ds.train, ds.test = pick_scene((ds.train, ds.test), scene, root)
        return ds
    train = _st_train(root)
    test = frame_folder_records(
        root / "testing" / "frames", "test", "testing/frames/SS_VVVV/NNN.jpg"
    )
    for rec in train + test:
        rec.scene = scene_of(rec.name)
    train, test = pick_scene((train, test), scene, root)
    pixel = root / "testing" / "test_pixel_mask"
    for rec in test if masks.is_dir() else []:
        f = masks / f"{rec.name}.npy"
        if not f.is_file():
            raise SourceError(f"{f}: missing; expected the frame labels of test video {rec.path}")
        attach_labels(rec, L.read_frame_npy(f), f)
        if (pixel / f"{rec.name}.npy").is_file():
            rec.mask_file = pixel / f"{rec.name}.npy"
    return Dataset(root, "shanghaitech", train, test)
