"""Decoded, resized uint8 frames, one memory-mapped .npy per (source, size, channels).

The key hashes the source path and its fingerprint (file count, sizes, mtimes), so a changed
source is decoded again. Frames are streamed into the entry one at a time: memory stays
flat whatever the video's length, and a container that reports a wrong frame count does not
matter (the .npy header is written last, with the number of frames actually decoded). The
entry is written to a temp file and renamed: a bad frame never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from ddlvad.data.sources import FrameFolder, SourceError, VideoFile, open_source, to_working
from ddlvad.io import atomic_write

HEADER_BYTES = 128  # fixed .npy (v1.0) header size: room for any frame count, 64-byte aligned


def default_cache_dir() -> Path:
    env = os.environ.get("DDLVAD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ddlvad"


def cache_key(path: str | Path, fingerprint: str, height: int, width: int, channels: int) -> str:
    raw = f"{Path(path).resolve()}|{fingerprint}|{height}x{width}x{channels}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy v1.0 header for a C-order uint8 array, padded to HEADER_BYTES."""
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape!r}, }}"
    body = text.ljust(HEADER_BYTES - 10 - 1) + "\n"
    if len(body) != HEADER_BYTES - 10:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def stream_frames(
    src: FrameFolder | VideoFile,
    f: BinaryIO,
    height: int,
    width: int,
    channels: int,
    progress: bool = False,
) -> int:
    """Write a header, then each working-size frame as decoded; fix the header's N at the end.

    Returns the number of frames written. Only one frame is held in memory at a time.
    """
    f.write(npy_header((0, height, width, channels)))
    n = 0
    bar = tqdm(
        total=len(src) or None,
        desc=f"cache {src.path.name}",
        leave=False,
        disable=not progress,
        unit="f",
    )
    with bar:
        for img in src:
            f.write(to_working(img, height, width, channels).tobytes())
            n += 1
            bar.update()
    if n == 0:
        raise SourceError(f"{src.path}: no decodable frames; expected at least one")
    f.seek(0)
    f.write(npy_header((n, height, width, channels)))
    return n


class FrameCache:
    """Decoded frames on disk, keyed by (source, fingerprint, size, channels)."""

    def __init__(self, cache_dir: str | Path | None = None, *, progress: bool = True) -> None:
        self.dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.progress = progress

    def entry_path(self, path: str | Path, height: int, width: int, channels: int) -> Path:
        fp = open_source(path).fingerprint()
        return self.dir / f"{cache_key(path, fp, height, width, channels)}.npy"

    def load(self, path: str | Path, height: int, width: int, channels: int) -> np.ndarray:
        """(N, height, width, channels) uint8, memory-mapped read-only; decoded on first use."""
        src = open_source(path)
        entry = self.dir / f"{cache_key(path, src.fingerprint(), height, width, channels)}.npy"
        if not entry.exists():
            self._build(src, entry, height, width, channels)
        return np.load(entry, mmap_mode="r")

    def _build(
        self, src: FrameFolder | VideoFile, entry: Path, height: int, width: int, channels: int
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                stream_frames(src, f, height, width, channels, self.progress)

        atomic_write(entry, write)
