"""Frame scores from reconstruction error.

error map e = ||X^t - f(X)||_2 over channels (B, H, W); frame score = max over 16x16 patch
means (optionally also over a grid shifted by patch/2); then a median filter (window 17) per
video, and optionally per-video min-max normalisation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter
from torch.utils.data import DataLoader

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
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw per-frame scores (N,) for one (N, H, W, C) uint8 video; error maps on demand."""
    model.eval()
    scores, maps = [], []
    loader = DataLoader(EvalClips(video, T), batch_size=batch_size, shuffle=False)
    for X in loader:
        X = X.to(device)  # (B, C, T, H, W)
        err = error_map(X[:, :, T // 2], model(X))
        scores.append(patch_max(err, patch, shifted).float().cpu().numpy())
        if keep_maps:
            maps.append(err.float().cpu().numpy())
    return np.concatenate(scores), (np.concatenate(maps) if keep_maps else None)
