"""T-frame clips over cached videos, tensors in (C, T, H, W) order.

Test clips cover every frame: the T//2 edge frames use clamped (replicated) neighbours, so
every labelled frame gets a score. (Training clips, with their pseudo-anomaly masks, are
``ddlvad.train.clips``.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


def check_T(T: int) -> None:
    if T < 1 or T % 2 == 0:
        raise ValueError(
            f"T must be an odd number >= 1 (the model reconstructs the middle frame), got T = {T}"
        )


def to_tensor(frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """(T, H, W, C) uint8 (an array, or a list of T (H, W, C) frames) -> (C, T, H, W) float32
    in [0, 1]."""
    return torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2).float() / 255.0


def window_indices(t: int, n: int, T: int) -> list[int]:
    """Frame indices of the T-window centred on frame t of n; missing neighbours repeat the
    nearest frame (the ``clamp`` edge rule)."""
    r = T // 2
    return [min(max(i, 0), n - 1) for i in range(t - r, t + r + 1)]


class EvalClips(Dataset):
    """One clip per frame of one video; edge frames use clamped neighbour indices."""

    def __init__(self, video: np.ndarray, T: int) -> None:
        check_T(T)
        self.video, self.T = video, T

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, t: int) -> torch.Tensor:
        return to_tensor(self.video[window_indices(t, len(self.video), self.T)])
