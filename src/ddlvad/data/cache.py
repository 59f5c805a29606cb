"""Decoded, resized uint8 frames, one memory-mapped .npy per (source, size, channels).

The key hashes the source path and its fingerprint (each file's name, size and mtime), so a
changed source (a frame edited, added, removed, or two frames swapped) is decoded again.
Frames are streamed into the entry one at a time: memory stays flat whatever the video's
length, and a container that reports a wrong frame count does not matter (the .npy header is
written last, with the number of frames actually decoded). The entry is written to a temp
file and renamed: a bad frame never leaves a half-written entry, and the temp files of a
killed build are removed by the next build.

Integrity: after the frames, an entry ends with a 16-byte trailer (``TRAILER_MAGIC`` and the
CRC-32 of the frame bytes); numpy ignores it. Opening an entry checks the header (a uint8
(N, H, W, C) array of the expected size), the file length and the checksum (about 4 GB/s,
once per entry per process); a damaged, truncated or foreign entry is rebuilt with a
``CacheWarning`` naming it, never used.
"""

from __future__ import annotations

import ast
import hashlib
import mmap
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from ddlvad.data.sources import FrameFolder, SourceError, VideoFile, open_source, to_working
from ddlvad.io import atomic_write, clean_orphans

HEADER_BYTES = 128  # fixed .npy (v1.0) header size: room for any frame count, 64-byte aligned
TRAILER_MAGIC = b"DDLVCRC1"  # + CRC-32 (uint32 LE) + 4 reserved bytes
TRAILER_BYTES = 16
CHUNK = 1 << 23  # bytes read at a time when verifying a checksum


class CacheWarning(UserWarning):
    """A cache entry was damaged and is being rebuilt."""


class CacheEntryError(ValueError):
    """A cache entry failed its header, length or checksum check."""


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
    crc = 0
    with bar:
        for img in src:
            data = to_working(img, height, width, channels).tobytes()
            f.write(data)
            crc = zlib.crc32(data, crc)
            n += 1
            bar.update()
    if n == 0:
        raise SourceError(f"{src.path}: no decodable frames; expected at least one")
    f.write(TRAILER_MAGIC + struct.pack("<II", crc, 0))
    f.seek(0)
    f.write(npy_header((n, height, width, channels)))
    return n


def read_header(f: BinaryIO) -> tuple[int, ...]:
    """The shape in a .npy header written by ``npy_header``; CacheEntryError otherwise."""
    head = f.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or head[:8] != b"\x93NUMPY\x01\x00":
        raise CacheEntryError(f"not a .npy v1.0 file ({len(head)}-byte header)")
    if struct.unpack("<H", head[8:10])[0] != HEADER_BYTES - 10:
        raise CacheEntryError("unexpected .npy header length")
    try:
        d = ast.literal_eval(head[10:].decode("latin1").strip())
        shape = tuple(int(x) for x in d["shape"])
        ok = d["descr"] == "|u1" and d["fortran_order"] is False and len(shape) == 4
    except (ValueError, SyntaxError, KeyError, TypeError):
        raise CacheEntryError("garbled .npy header") from None
    if not ok:
        raise CacheEntryError(f"header {d!r} is not a uint8 (N, H, W, C) array")
    return shape


def verify_entry(path: Path, height: int, width: int, channels: int) -> tuple[int, ...]:
    """Check an entry's header, length and checksum; its shape, or CacheEntryError."""
    with open(path, "rb") as f:
        shape = read_header(f)
        if shape[1:] != (height, width, channels) or shape[0] < 1:
            raise CacheEntryError(f"shape {shape}, expected (N>=1, {height}, {width}, {channels})")
        body = shape[0] * height * width * channels
        size = os.fstat(f.fileno()).st_size
        if size != HEADER_BYTES + body + TRAILER_BYTES:
            raise CacheEntryError(
                f"{size} bytes, expected {HEADER_BYTES + body + TRAILER_BYTES} (truncated?)"
            )
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm, memoryview(mm) as view:
            crc = 0  # CRC over the mapped pages in chunks, without copying them
            for a in range(HEADER_BYTES, HEADER_BYTES + body, CHUNK):
                crc = zlib.crc32(view[a : min(a + CHUNK, HEADER_BYTES + body)], crc)
            magic, want, _ = struct.unpack("<8sII", view[HEADER_BYTES + body :])
    if magic != TRAILER_MAGIC:
        raise CacheEntryError("no checksum trailer (written by an older ddlvad?)")
    if crc != want:
        raise CacheEntryError(f"checksum mismatch (crc32 {crc:08x}, written {want:08x})")
    return shape


class FrameCache:
    """Decoded frames on disk, keyed by (source, fingerprint, size, channels)."""

    def __init__(self, cache_dir: str | Path | None = None, *, progress: bool = True) -> None:
        self.dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.progress = progress

    def entry_path(self, path: str | Path, height: int, width: int, channels: int) -> Path:
        fp = open_source(path).fingerprint()
        return self.dir / f"{cache_key(path, fp, height, width, channels)}.npy"

    def load(self, path: str | Path, height: int, width: int, channels: int) -> np.ndarray:
        """(N, height, width, channels) uint8, memory-mapped read-only; decoded on first use.

        An entry that fails its check is rebuilt, with a CacheWarning naming it."""
        src = open_source(path)
        entry = self.dir / f"{cache_key(path, src.fingerprint(), height, width, channels)}.npy"
        if entry.exists() and not self._usable(entry, src, height, width, channels):
            entry.unlink()
        if not entry.exists():
            self._build(src, entry, height, width, channels)
            _VERIFIED.add(_stat_key(entry))  # its checksum was just computed from its frames
        return np.load(entry, mmap_mode="r")

    def _check(self, entry: Path, height: int, width: int, channels: int) -> None:
        """verify_entry, once per (file, size, mtime, inode) in this process."""
        key = _stat_key(entry)
        if key not in _VERIFIED:
            verify_entry(entry, height, width, channels)
            _VERIFIED.add(key)

    def _usable(self, entry: Path, src, height: int, width: int, channels: int) -> bool:
        try:
            self._check(entry, height, width, channels)
            return True
        except CacheEntryError as e:
            warnings.warn(
                f"{entry}: damaged frame cache entry of {src.path} ({e}); rebuilding it",
                CacheWarning,
                stacklevel=3,
            )
            return False

    def _build(
        self, src: FrameFolder | VideoFile, entry: Path, height: int, width: int, channels: int
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                stream_frames(src, f, height, width, channels, self.progress)

        clean_orphans(self.dir, ".*.npy.*.tmp")  # left by a build that was killed
        atomic_write(entry, write)


_VERIFIED: set[tuple] = set()  # entries checked in this process


def _stat_key(entry: Path) -> tuple:
    st = entry.stat()
    return (str(entry), st.st_size, st.st_mtime_ns, st.st_ino)
