"""The scoring protocol: how reconstruction error becomes one score per frame.

error map e = ||X^t - f(X)||_2 over channels (B, H, W); frame score = the highest mean over a
grid of ``patch`` x ``patch`` cells (optionally also over the grid shifted by patch/2); then a
median filter per video (window 17 in the paper), and optionally per-video min-max
normalisation. ``ddlvad test``, the threshold calibration, ``ddlvad predict`` and the overlay
all score through the functions here.

Windows: frame t is scored from the T-frame clip centred on it. Edge frames (the first and
last T//2, which have no full T-window) follow ``edge``:
- ``clamp``: they are scored from clips whose missing neighbours are the nearest frame;
- ``copy``: only full windows are scored, and each edge frame takes the score (and error
  map) of the nearest full-window frame.

Median filters: ``smooth`` is the centred filter over a whole video (edges: nearest);
``CentredMedian`` gives the same values on a stream, each once the frames after it arrived;
``CausalMedian`` (live streams, which have no future frames) takes the last ``window`` scores.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter

from ddlvad.config import Config
from ddlvad.data.clips import window_indices


def error_map(x_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, H, W) per-pixel Euclidean distance over channels."""
    return torch.linalg.vector_norm(x_t - y, dim=1)


def patch_max(err: torch.Tensor, patch: int = 16, shifted: bool = False) -> torch.Tensor:
    """(B, H, W) -> (B,): the highest mean over non-overlapping patch x patch cells."""
    e = err[:, None]  # (B, 1, H, W)
    score = F.avg_pool2d(e, patch, stride=patch).flatten(1).amax(1)
    if shifted:
        h = patch // 2
        s2 = F.avg_pool2d(e[..., h:, h:], patch, stride=patch).flatten(1).amax(1)
        score = torch.maximum(score, s2)
    return score


def smooth(scores: np.ndarray, window: int = 17) -> np.ndarray:
    """Median filter over one video's frame scores (edges: nearest); window 0 or 1 = off."""
    if window <= 1 or len(scores) == 0:
        return np.asarray(scores, dtype=np.float64)
    return median_filter(np.asarray(scores, dtype=np.float64), size=window, mode="nearest")


class CentredMedian:
    """``smooth`` computed on a stream: the value of item i comes out once item
    i + (window - 1) // 2 has arrived, or at ``finish``."""

    def __init__(self, window: int) -> None:
        self.w = max(window, 1)
        self.lo, self.hi = self.w // 2, (self.w - 1) // 2  # the window is [i - lo, i + hi]
        self.raw: list[float] = []
        self.next = 0

    def push(self, raw: float) -> list[tuple[int, float]]:
        self.raw.append(raw)
        return self._emit(len(self.raw) - 1 - self.hi)

    def finish(self) -> list[tuple[int, float]]:
        return self._emit(len(self.raw) - 1)

    def _emit(self, last: int) -> list[tuple[int, float]]:
        out = []
        while self.next <= last:
            i = self.next
            # the slice holds i's whole window, or ends where the stream does: ``smooth`` on
            # it gives the value ``smooth`` gives on the whole stream
            a, b = max(i - self.lo, 0), min(i + self.hi + 1, len(self.raw))
            out.append((i, float(smooth(np.asarray(self.raw[a:b]), self.w)[i - a])))
            self.next += 1
        return out


class CausalMedian:
    """Live smoothing: the median of the last ``window`` raw scores (fewer at the start).

    A live stream has no future frames, so this replaces the centred filter of ``ddlvad
    test``; a step in the raw score shows up about window/2 frames later. 0 or 1 = off."""

    def __init__(self, window: int) -> None:
        self.buf: deque[float] = deque(maxlen=max(window, 1))

    def push(self, raw: float) -> float:
        self.buf.append(raw)
        return sorted(self.buf)[len(self.buf) // 2]


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


def postprocess(raw: np.ndarray, cfg: Config, normalize: bool | None = None) -> np.ndarray:
    """Median filter (score.median), then per-video min-max when normalisation is on."""
    out = smooth(raw, cfg.score.median)
    return minmax(out) if (cfg.score.normalize if normalize is None else normalize) else out


EDGE_RULES = {
    "clamp": "edge frames are scored from clips whose missing neighbours repeat the nearest frame",
    "copy": "only full T-windows are scored; each edge frame copies the nearest full-window score",
}


def check_edge(edge: str) -> None:
    if edge not in EDGE_RULES:
        raise ValueError(f"score.edge must be one of {sorted(EDGE_RULES)}, got {edge!r}")


def check_patch(patch: int, height: int, width: int, shifted: bool = False) -> None:
    """The plain grid needs 1 <= patch <= min(H, W); the shifted one starts patch//2 px in."""
    m = min(height, width)
    if not 1 <= patch <= m or (shifted and patch > m - patch // 2):
        rule = "min(H, W) - patch // 2 with the shifted grid" if shifted else "min(H, W)"
        raise ValueError(
            f"score.patch = {patch} does not fit {height}x{width} frames; need 1 <= patch <= {rule}"
        )


class SlidingWindow:
    """Frame count -> the centred T-windows of frame indices that get scored.

    ``clamp``: every frame is a centre, missing neighbours repeat the nearest frame.
    ``copy``: only full windows are centres (the scorer copies their scores to the edges)."""

    def __init__(self, T: int, edge: str = "clamp") -> None:
        check_edge(edge)
        self.T, self.r, self.edge, self.n = T, T // 2, edge, 0
        self.next = 0 if edge == "clamp" else self.r  # next centre to emit

    def push(self) -> list[tuple[int, list[int]]]:
        """Register one more frame; return the windows it completes."""
        self.n += 1
        out = []
        while self.next + self.r < self.n:
            out.append(self._clip(self.next))
            self.next += 1
        return out

    def finish(self) -> list[tuple[int, list[int]]]:
        """End of stream: the right-edge windows (clamp only)."""
        if self.edge == "copy" and self.n < self.T:
            raise ValueError(f"edge rule 'copy' needs at least T = {self.T} frames, got {self.n}")
        out = [self._clip(c) for c in range(self.next, self.n)] if self.edge == "clamp" else []
        self.next = max(self.next, self.n)
        return out

    def windows(self, n: int) -> list[tuple[int, list[int]]]:
        """Every (centre, frame indices) window of a whole video of ``n`` frames, in order."""
        out = []
        for _ in range(n):
            out += self.push()
        return out + self.finish()

    def _clip(self, c: int) -> tuple[int, list[int]]:
        return c, window_indices(c, self.n, self.T)


def ranges_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """0-based inclusive (start, end) index ranges of consecutive True values."""
    f = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    d = np.diff(f.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
