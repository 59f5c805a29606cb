"""Decoded, resized uint8 frames, one memory-mapped .npy per (source, size, channels).

The key hashes the source path and its fingerprint (file count, sizes, mtimes), so a changed
source is decoded again. Entries are written to a temp file and renamed: a bad frame never
leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ddlvad.data.sources import SourceError, open_source, to_working
from ddlvad.io import atomic_write


def default_cache_dir() -> Path:
    env = os.environ.get("DDLVAD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ddlvad"


def cache_key(path: str | Path, fingerprint: str, height: int, width: int, channels: int) -> str:
    raw = f"{Path(path).resolve()}|{fingerprint}|{height}x{width}x{channels}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


class FrameCache:
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

    def _build(self, src, entry: Path, height: int, width: int, channels: int) -> None:
        n_hint = len(src)

        def write(tmp: str) -> None:
            frames = []
            # Decode into a list of small arrays, then one write: avoids guessing N for videos
            # whose container reports a wrong frame count.
            it = tqdm(
                src,
                total=n_hint or None,
                desc=f"cache {src.path.name}",
                leave=False,
                disable=not self.progress,
                unit="f",
            )
            for img in it:
                frames.append(to_working(img, height, width, channels))
            if not frames:
                raise SourceError(f"{src.path}: no decodable frames")
            arr = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.uint8, shape=(len(frames), height, width, channels)
            )
            for i, f in enumerate(frames):
                arr[i] = f
            arr.flush()
            del arr

        atomic_write(entry, write)
