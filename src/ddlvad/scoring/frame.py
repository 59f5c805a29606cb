"""The engine's frame score: reconstruction error map, then the patch max (paper, Sec. 3.4).

error map e = ||X^t - f(X)||_2 over channels (to the protocol's ``power``); frame score = the
highest mean over a grid of patch x patch cells, optionally also over the grid shifted by
patch/2 (the authors' code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def error_map(x_t: torch.Tensor, y: torch.Tensor, power: int = 1) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, H, W) per-pixel Euclidean distance over channels, to ``power``."""
    d = torch.linalg.vector_norm(x_t - y, dim=1)
    return d if power == 1 else d**power


def patch_max(err: torch.Tensor, patch: int = 16, shifted: bool = False) -> torch.Tensor:
    """(B, H, W) -> (B,): the highest mean over non-overlapping patch x patch cells."""
    e = err[:, None]  # (B, 1, H, W)
    score = F.avg_pool2d(e, patch, stride=patch).flatten(1).amax(1)
    if shifted:
        h = patch // 2
        s2 = F.avg_pool2d(e[..., h:, h:], patch, stride=patch).flatten(1).amax(1)
        score = torch.maximum(score, s2)
    return score
