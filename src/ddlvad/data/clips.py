"""T-frame clip datasets over cached videos, tensors in (C, T, H, W) order.

Training clips are full windows (centre t in [T//2, N - 1 - T//2]) and carry the object
mask M of one track present in all T frames. Test clips cover every frame: the T//2 edge
frames use clamped (replicated) neighbours, so every labelled frame gets a score.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ddlvad.objects.masks import MaskPicker

# Why a training clip has (or lacks) a pseudo-anomaly mask; counted per epoch.
MASK_NONE, MASK_TRACK, MASK_RANDOM = 0, 1, 2


def check_T(T: int) -> None:
    if T < 1 or T % 2 == 0:
        raise ValueError(
            f"T must be an odd number >= 1 (the model reconstructs the middle frame), got T = {T}"
        )


def to_tensor(frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """(T, H, W, C) uint8 (an array, or a list of T (H, W, C) frames) -> (C, T, H, W) float32
    in [0, 1]."""
    return torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2).float() / 255.0


class TrainClips(Dataset):
    """Full T-windows over training videos, each with a pseudo-anomaly mask M (1, T, H, W)."""

    def __init__(
        self,
        videos: list[np.ndarray],
        T: int,
        picker: MaskPicker | None = None,
        *,
        names: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        check_T(T)
        self.videos, self.T, self.picker, self.seed = videos, T, picker, seed
        self.names = names or [str(i) for i in range(len(videos))]
        r = T // 2
        for name, v in zip(self.names, videos, strict=True):
            if len(v) < T:
                raise ValueError(f"video {name}: {len(v)} frames, shorter than T = {T}")
        self.index = [(vi, t) for vi, v in enumerate(videos) for t in range(r, len(v) - r)]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Mask choices depend on (seed, epoch, index) only: runs and resumes are repeatable."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        vi, t = self.index[i]
        r = self.T // 2
        X = to_tensor(self.videos[vi][t - r : t + r + 1])  # (C, T, H, W)
        _, T, H, W = X.shape
        M = torch.zeros(1, T, H, W)
        item = {"X": X, "M": M, "video": torch.tensor(vi), "t": torch.tensor(t)}
        kind = MASK_NONE
        if self.picker is not None:
            # Mask choice and noise A ~ U(0, 1) depend on (seed, epoch, clip) only, so they
            # are the same whatever the batch split: resumed and DDP runs see the same X_A.
            rng = np.random.default_rng([self.seed, self.epoch, i])
            boxes, kind = self.picker.pick(self.names[vi], t, T, rng)
            for k, box in enumerate(boxes if boxes is not None else []):
                x1, y1, x2, y2 = box_to_pixels(box, H, W)
                M[0, k, y1:y2, x1:x2] = 1.0
            item["A"] = torch.from_numpy(rng.random(X.shape, dtype=np.float32))
        item["kind"] = torch.tensor(kind)
        return item


def box_to_pixels(box, H: int, W: int) -> tuple[int, int, int, int]:
    """Normalised [x1, y1, x2, y2] -> integer pixel bounds, at least 1 px wide."""
    x1, y1, x2, y2 = box
    px1, py1 = int(np.floor(x1 * W)), int(np.floor(y1 * H))
    px2, py2 = int(np.ceil(x2 * W)), int(np.ceil(y2 * H))
    px1, py1 = min(max(px1, 0), W - 1), min(max(py1, 0), H - 1)
    return px1, py1, max(min(px2, W), px1 + 1), max(min(py2, H), py1 + 1)


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
