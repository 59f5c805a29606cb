"""Frame sources: a folder of images or a video file, behind one small API.

Every source yields uint8 frames of shape (H, W, 3) in RGB order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


class SourceError(ValueError):
    """Bad input: the message names the file and what was expected."""


def natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder of frames")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()]
    if not files:
        raise SourceError(f"{folder}: empty folder, expected frames ({'/'.join(IMAGE_EXTS)})")
    return sorted(files, key=lambda p: natural_key(p.name))


def decode_image(path: str | Path) -> np.ndarray:
    """Read one image as (H, W, 3) uint8 RGB, or raise SourceError naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"{path}: unreadable or corrupt image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolder:
    """A video stored as one image per frame, in natural sort order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = list_images(self.path)
        self.fps: float | None = None

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        return decode_image(self.files[i])

    def __iter__(self) -> Iterator[np.ndarray]:
        shape = None
        for f in self.files:
            img = decode_image(f)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise SourceError(
                    f"{f}: frame size {img.shape[1]}x{img.shape[0]} differs from the video's "
                    f"first frame {shape[1]}x{shape[0]} in {self.path}"
                )
            yield img

    def fingerprint(self) -> str:
        st = [f.stat() for f in self.files]
        return f"{len(st)}:{sum(s.st_size for s in st)}:{max(s.st_mtime_ns for s in st)}"


class VideoFile:
    """A video file decoded through OpenCV (FFmpeg backend)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video file not found")
        cap = cv2.VideoCapture(str(self.path))
        ok = cap.isOpened()
        self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or None if ok else None
        self._n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        ok = ok and cap.read()[0]
        cap.release()
        if not ok:
            raise SourceError(f"{self.path}: undecodable video (OpenCV could not read a frame)")

    def __len__(self) -> int:
        return self._n

    def read(self, i: int) -> np.ndarray:
        cap = cv2.VideoCapture(str(self.path))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, img = cap.read()
        finally:
            cap.release()
        if not ok:
            raise SourceError(f"{self.path}: cannot decode frame {i}")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    def fingerprint(self) -> str:
        st = os.stat(self.path)
        return f"{st.st_size}:{st.st_mtime_ns}"


def open_source(path: str | Path) -> FrameFolder | VideoFile:
    """A folder of frames or a video file."""
    p = Path(path)
    if p.is_dir():
        return FrameFolder(p)
    if p.suffix.lower() in VIDEO_EXTS:
        return VideoFile(p)
    raise SourceError(f"{p}: expected a folder of frames or a video file ({'/'.join(VIDEO_EXTS)})")


def to_working(img: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """(h, w, 3) RGB uint8 -> (height, width, channels) uint8, area-resized, gray if C = 1."""
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels != 3:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return np.ascontiguousarray(img)
