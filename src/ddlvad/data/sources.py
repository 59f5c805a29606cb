"""Frame sources: a folder of images or a video file, behind one small API.

Every source has ``len(src)``, ``src.fps`` (None when unknown), ``src.read(i)`` / ``src[i]``
(random access), iteration in order, ``src.resolution`` (width, height) and a
``fingerprint()`` that changes when the files change. Frames are uint8 (H, W, 3) RGB.

Frame folders hold one image per frame (jpg/png/tif/bmp), sorted by natural order, so 0- and
1-based names (``000.jpg``, ``001.tif``) and unpadded names (``1.png``, ``10.png``) all work.
Video files (mp4/avi/mkv/...) are decoded through OpenCV. Their container's frame count can
be wrong; ``count_frames()`` decodes the file once to get the exact count.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


class SourceError(ValueError):
    """Bad input: the message names the file and what was expected."""


class SourceWarning(UserWarning):
    """Suspect input that can still be used (e.g. a video shorter than its container says)."""


def warn_source(notes: list[str], stats: dict[str, Any], stacklevel: int = 4) -> None:
    """Warn each note (``SourceWarning``) and record them in ``stats["warnings"]``."""
    for note in notes:
        warnings.warn(note, SourceWarning, stacklevel=stacklevel)
    if notes:
        stats["warnings"] = notes


def shown(path: str | Path) -> str:
    """``path`` as printable text: bytes that are not UTF-8 appear as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def utf8_path(path: str | Path) -> str:
    """``path`` as text for OpenCV, which crashes the process on a name that is not UTF-8
    (an ``é`` written in Latin-1, say): SourceError naming the path for such a name."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            f"{shown(path)}: file name is not valid UTF-8; expected a UTF-8 name (rename it, "
            f"e.g. with convmv)"
        ) from None
    return text


def capture(path: str | Path) -> cv2.VideoCapture:
    """An OpenCV capture of a video file, after checking its name (``utf8_path``)."""
    return cv2.VideoCapture(utf8_path(path))


def natural_key(name: str) -> list:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _visible(p: Path) -> bool:
    # skip hidden files and macOS "._001.tif" resource forks that sit beside real frames
    return not p.name.startswith(".")


def is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS and _visible(p) and p.is_file()


def is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTS and _visible(p) and p.is_file()


def has_images(folder: Path) -> bool:
    """True when ``folder`` directly holds at least one image file."""
    return folder.is_dir() and any(is_image(p) for p in folder.iterdir())


def list_images(folder: str | Path) -> list[Path]:
    """The frames of a frame folder in natural order; SourceError when none."""
    folder = Path(utf8_path(folder))
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder of frames")
    files = [Path(utf8_path(p)) for p in folder.iterdir() if is_image(p)]
    if not files:
        raise SourceError(f"{folder}: empty folder, expected frames ({'/'.join(IMAGE_EXTS)})")
    return sorted(files, key=lambda p: natural_key(p.name))


def list_videos(folder: str | Path) -> list[Path]:
    """Video files directly in ``folder``, in natural order (possibly empty)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if is_video(p)), key=lambda p: natural_key(p.name))


JPEG_PADDING = b"\x00\xff\r\n\t "  # bytes some writers leave after the end-of-image marker


def jpeg_complete(data: bytes) -> bool:
    """True when a JPEG's bytes start with SOI and end with EOI (optionally padded).

    libjpeg decodes a truncated file without an error (it fills the missing rows with grey
    and only prints "Premature end of JPEG file"), so truncation is checked here. Inside the
    entropy-coded data 0xFF is always stuffed, so FF D9 marks the end of an image."""
    end = data.rfind(b"\xff\xd9")
    return data[:2] == b"\xff\xd8" and end >= 0 and not data[end + 2 :].strip(JPEG_PADDING)


def decode_image(path: str | Path, frame: int | None = None) -> np.ndarray:
    """Read one image as (H, W, 3) uint8 RGB, or raise SourceError naming the file (and
    the frame index, when given)."""
    where = f", frame {frame} of its video" if frame is not None else ""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: unreadable image ({e.strerror}){where}") from None
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and not jpeg_complete(data):
        raise SourceError(
            f"{path}: unreadable or corrupt image: truncated JPEG ({len(data)} bytes, no "
            f"end-of-image marker){where}; expected a complete image"
        )
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise SourceError(f"{path}: unreadable or corrupt image ({len(data)} bytes){where}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _index(i: int, n: int, path: Path) -> int:
    if not -n <= i < n:
        raise IndexError(f"{path}: frame {i} out of range (0..{n - 1})")
    return i % n


class FrameFolder:
    """A video stored as one image per frame, in natural sort order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = list_images(self.path)
        self.fps: float | None = None

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        """Frame i as (H, W, 3) uint8 RGB."""
        i = _index(i, len(self.files), self.path)
        return decode_image(self.files[i], i)

    __getitem__ = read

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) of the first frame."""
        h, w = self.read(0).shape[:2]
        return w, h

    def __iter__(self) -> Iterator[np.ndarray]:
        shape = None
        for i, f in enumerate(self.files):
            img = decode_image(f, i)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise SourceError(
                    f"{f}: frame size {img.shape[1]}x{img.shape[0]} differs from the video's "
                    f"first frame {shape[1]}x{shape[0]} in {self.path}; expected one size per video"
                )
            yield img

    def count_frames(self) -> int:
        return len(self.files)

    def fingerprint(self) -> str:
        """A hash of every frame's name, size and mtime: renaming, swapping, editing, adding
        or removing a frame changes it."""
        h = hashlib.sha1()
        for f in self.files:
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return f"{len(self.files)}:{h.hexdigest()}"


class VideoFile:
    """A video file decoded through OpenCV (FFmpeg backend).

    ``len()`` is the container's frame count until ``count_frames()`` (or a full iteration)
    has measured the exact one. ``read(i)`` keeps one capture open, so reading frames in
    order does not seek.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video file not found")
        cap = capture(self.path)
        try:
            ok = cap.isOpened()
            self.fps: float | None = (float(cap.get(cv2.CAP_PROP_FPS)) or None) if ok else None
            self._n = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if ok else 0
            w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
            self._size = (int(w), int(h))
            ok = ok and cap.read()[0]
        finally:
            cap.release()
        if not ok:
            raise SourceError(
                f"{self.path}: undecodable video (OpenCV could not read a frame); "
                f"expected a video file in a format FFmpeg can decode"
            )
        self._exact = False
        self._cap: Any = None
        self._pos = 0

    def __len__(self) -> int:
        return self._n

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) as the container reports it."""
        return self._size

    def count_frames(self) -> int:
        """The exact number of decodable frames (decodes the whole file once)."""
        if not self._exact:
            cap = capture(self.path)
            n = 0
            try:
                while cap.grab():
                    n += 1
            finally:
                cap.release()
            self._n, self._exact = n, True
        return self._n

    def read(self, i: int) -> np.ndarray:
        """Frame i as (H, W, 3) uint8 RGB; sequential reads reuse the open capture."""
        i = _index(i, len(self), self.path)
        if self._cap is None:
            self._cap = capture(self.path)
            self._pos = 0
        if self._pos != i:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, img = self._cap.read()
        if not ok:
            self.close()
            raise SourceError(f"{self.path}: cannot decode frame {i} of {len(self)}")
        self._pos = i + 1
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    __getitem__ = read

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cap"] = None  # captures do not pickle (DataLoader workers)
        return state

    def __iter__(self) -> Iterator[np.ndarray]:
        cap = capture(self.path)
        n = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                n += 1
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
        self._n, self._exact = n, True  # reached only when iterated to the end

    def fingerprint(self) -> str:
        st = os.stat(self.path)
        return f"{st.st_size}:{st.st_mtime_ns}"


Source = FrameFolder | VideoFile


def open_source(path: str | Path) -> FrameFolder | VideoFile:
    """A folder of frames or a video file."""
    p = Path(path)
    if p.is_dir():
        return FrameFolder(p)
    if p.suffix.lower() in VIDEO_EXTS:
        return VideoFile(p)
    if not p.exists():
        raise SourceError(f"{p}: not found; expected a folder of frames or a video file")
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
