"""Frame scores from reconstruction error.

error map e = ||X^t - f(X)||_2 over channels (B, H, W); frame score = max over 16x16 patch
means (optionally also over a grid shifted by patch/2); then a median filter (window 17) per
video, and optionally per-video min-max normalisation.

Edge frames (the first and last T//2, which have no full T-window) follow ``edge``:
- ``clamp``: they are scored from clips whose missing neighbours are the nearest frame;
- ``copy``: only full windows are scored, and each edge frame takes the score (and error
  map) of the nearest full-window frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter
from torch.utils.data import DataLoader, Subset

from ddlvad.data.clips import EvalClips


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


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


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


@torch.no_grad()
def reconstruct_video(
    model: torch.nn.Module,
    video: np.ndarray,
    T: int,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    patch: int = 16,
    shifted: bool = False,
    keep_maps: bool = False,
    edge: str = "clamp",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw per-frame scores (N,) for one (N, H, W, C) uint8 video; error maps (N, H, W) on
    demand. ``edge`` picks the edge-frame rule (see the module docstring)."""
    check_edge(edge)
    check_patch(patch, video.shape[1], video.shape[2], shifted)
    model.eval()
    n, r = len(video), T // 2
    clips = EvalClips(video, T)
    if edge == "copy":
        if n < T:
            raise ValueError(f"edge rule 'copy' needs videos of at least T = {T} frames, got {n}")
        clips = Subset(clips, range(r, n - r))
    scores, maps = [], []
    for X in DataLoader(clips, batch_size=batch_size, shuffle=False):
        X = X.to(device)  # (B, C, T, H, W)
        err = error_map(X[:, :, T // 2], model(X))
        scores.append(patch_max(err, patch, shifted).float().cpu().numpy())
        if keep_maps:
            maps.append(err.float().cpu().numpy())
    s = np.concatenate(scores)
    m = np.concatenate(maps) if keep_maps else None
    if edge == "copy" and r > 0:
        s = np.pad(s, (r, r), mode="edge")
        m = None if m is None else np.pad(m, ((r, r), (0, 0), (0, 0)), mode="edge")
    return s, m


@torch.no_grad()
def reconstruct_frames(
    model: torch.nn.Module, video: np.ndarray, T: int, frames: list[int], *, device="cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(X^t, f(X)) for chosen frames of one video: two (K, H, W, C) float arrays in [0, 1].

    Clips follow the clamp rule, so edge frames are reconstructable too."""
    model.eval()
    clips = EvalClips(video, T)
    X = torch.stack([clips[int(t)] for t in frames]).to(device)  # (K, C, T, H, W)
    y = model(X)  # (K, C, H, W)
    x_t = X[:, :, T // 2]
    return (
        x_t.permute(0, 2, 3, 1).float().cpu().numpy(),
        y.permute(0, 2, 3, 1).float().cpu().numpy(),
    )
