"""Object proposals for a static camera: temporal-median background subtraction.

Per video: background = per-pixel median of (up to ``bg_frames``) frames; foreground =
|frame - background| > ``diff_threshold``; then opening/closing, connected components, and
an area filter (fractions of the frame). Boxes are normalised [x1, y1, x2, y2].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class BgSubParams:
    diff_threshold: int = 25  # gray levels
    min_area: float = 0.0005  # fraction of the frame area
    max_area: float = 0.25
    min_aspect: float = 0.1  # w/h and h/w must both exceed this
    kernel: int = 3  # morphology kernel, pixels at working resolution
    bg_frames: int = 200


def _gray(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, H, W) uint8."""
    if frames.shape[-1] == 1:
        return np.asarray(frames[..., 0])
    return np.stack([cv2.cvtColor(np.asarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def background(frames: np.ndarray, n: int = 200) -> np.ndarray:
    """Per-pixel temporal median over an even subsample of frames -> (H, W) uint8."""
    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int)
    return np.median(_gray(frames[idx]), axis=0).astype(np.uint8)


def foreground_boxes(gray: np.ndarray, bg: np.ndarray, p: BgSubParams) -> np.ndarray:
    """One frame -> (k, 4) normalised boxes of moving blobs."""
    H, W = gray.shape
    fg = (cv2.absdiff(gray, bg) > p.diff_threshold).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.kernel, p.kernel))
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, k)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, k, iterations=2)
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    boxes = []
    for x, y, w, h, _area in stats[1:n]:
        frac = (w * h) / (H * W)
        if not (p.min_area <= frac <= p.max_area):
            continue
        if w / h < p.min_aspect or h / w < p.min_aspect:
            continue
        boxes.append([x / W, y / H, (x + w) / W, (y + h) / H])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def propose_bgsub(frames: np.ndarray, params: BgSubParams | None = None) -> list[np.ndarray]:
    """(N, H, W, C) uint8 video -> per-frame (k, 4) normalised boxes."""
    p = params or BgSubParams()
    gray = _gray(frames)
    bg = background(frames, p.bg_frames)
    return [foreground_boxes(g, bg, p) for g in gray]
