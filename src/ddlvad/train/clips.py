"""Training clips: full T-windows (centre t in [T//2, N - 1 - T//2]), each carrying the object
mask M of one track present in all T frames (the pseudo-anomaly's region) and its noise A.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ddlvad.data.clips import check_T, to_tensor
from ddlvad.objects.masks import MASK_NONE, MaskPicker


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
