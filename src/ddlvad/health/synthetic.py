"""Synthetic anomalies in stretches of normal footage, for the label-free health score.

Each synthetic video is ``length`` consecutive normal frames whose middle third carries one
kind of anomaly (labels 1 there, 0 elsewhere):

- ``noise``: a square, moving across the stretch, blended with uniform noise at weight 0.25 (the
  paper's pseudo-anomaly at a fixed strength, eq. 1);
- ``paste``: a square of the same footage from another place and time, moving across the
  stretch (an object where none belongs; training never saw it);
- ``fast``: the stretch plays ``speedup`` times faster (running; training never saw it).

Every choice comes from ``rng``, so a health score is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("noise", "paste", "fast")
BOX = 0.2  # square side, a fraction of the frame's shorter side
SPEEDUP = 4
NOISE = 0.25  # blend weight of the noise (sigma in eq. 1)


@dataclass(frozen=True)
class Synthetic:
    """One synthetic test video: (N, H, W, C) uint8 frames and their (N,) 0/1 labels."""

    source: str
    kind: str
    frames: np.ndarray
    labels: np.ndarray


def span(length: int) -> tuple[int, int]:
    """[a, b): the anomalous middle third of a stretch of ``length`` frames."""
    return length // 3, length - length // 3


def frames_needed(length: int) -> int:
    """Source frames a stretch of ``length`` takes (the fast kind plays its third faster)."""
    a, b = span(length)
    return length + (b - a) * (SPEEDUP - 1)


def synthesize(
    video: np.ndarray, kind: str, length: int, rng: np.random.Generator, source: str = ""
) -> Synthetic:
    """A synthetic video of ``kind`` from a random stretch of ``video`` (N, H, W, C) uint8;
    ``len(video)`` must be at least ``frames_needed(length)``."""
    if kind not in KINDS:
        raise ValueError(f"synthetic anomaly kind must be one of {KINDS}, got {kind!r}")
    need = frames_needed(length)
    if len(video) < need:
        raise ValueError(f"{source or 'video'}: {len(video)} frames, a stretch needs {need}")
    start = int(rng.integers(0, len(video) - need + 1))
    a, b = span(length)
    labels = np.zeros(length, np.int8)
    labels[a:b] = 1
    if kind == "fast":
        idx = np.concatenate([np.arange(a), a + SPEEDUP * np.arange(b - a)])
        idx = np.concatenate([idx, idx[-1] + 1 + np.arange(length - b)])
        return Synthetic(source, kind, video[start + idx], labels)
    frames = video[start : start + length].copy()
    path = _path(frames.shape[1:3], b - a, rng)
    if kind == "noise":
        for k, (y, x, s) in enumerate(path):
            cut = frames[a + k, y : y + s, x : x + s].astype(np.float32)
            noise = rng.uniform(0, 255, cut.shape).astype(np.float32)
            frames[a + k, y : y + s, x : x + s] = np.rint((1 - NOISE) * cut + NOISE * noise).astype(
                np.uint8
            )
    else:  # paste: the same footage from another place and time, moving along the path
        t0 = int(rng.integers(0, len(video) - (b - a) + 1))
        src = _path(frames.shape[1:3], b - a, rng)
        for k, ((y, x, s), (sy, sx, _)) in enumerate(zip(path, src, strict=True)):
            frames[a + k, y : y + s, x : x + s] = video[t0 + k, sy : sy + s, sx : sx + s]
    return Synthetic(source, kind, frames, labels)


def _path(hw: tuple[int, int], n: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """n (y, x, side) positions of a square crossing the frame in a straight line."""
    H, W = hw
    s = max(int(round(BOX * min(H, W))), 2)
    p0 = np.array([rng.uniform(0, H - s), rng.uniform(0, W - s)])
    p1 = np.array([rng.uniform(0, H - s), rng.uniform(0, W - s)])
    out = []
    for k in range(n):
        y, x = p0 + (p1 - p0) * (k / max(n - 1, 1))
        out.append((int(round(y)), int(round(x)), s))
    return out
