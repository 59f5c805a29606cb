"""Training clips: full T-windows (centre t in [T//2, N - 1 - T//2]), each carrying the object
mask M of one track present in all T frames (the pseudo-anomaly's region) and its noise A.

Two options against fitting one video's look: ``balance`` gives every training video the same
share of an epoch (short videos repeat, long ones are thinned, a different subset each
epoch); ``shift`` moves each clip (its T frames and mask together) by a random whole number of
pixels up to ``shift`` in x and y, edges replicated, so the network cannot store the
background at fixed positions and must copy it from its input.
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
        balance: bool = False,
        shift: int = 0,
    ) -> None:
        check_T(T)
        self.videos, self.T, self.picker, self.seed = videos, T, picker, seed
        self.balance, self.shift = balance, shift
        self.names = names or [str(i) for i in range(len(videos))]
        r = T // 2
        for name, v in zip(self.names, videos, strict=True):
            if len(v) < T:
                raise ValueError(f"video {name}: {len(v)} frames, shorter than T = {T}")
        self.all = [(vi, t) for vi, v in enumerate(videos) for t in range(r, len(v) - r)]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Mask choices depend on (seed, epoch, index) only: runs and resumes are repeatable."""
        self.epoch = epoch
        self.index = balanced(self.videos, self.T, epoch) if self.balance else self.all

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
        if self.shift:
            d = np.random.default_rng([self.seed, self.epoch, i, 1]).integers(
                -self.shift, self.shift + 1, 2
            )
            item["X"], item["M"] = translate(X, *d), translate(M, *d, fill=0.0)
        return item


def balanced(videos: list[np.ndarray], T: int, epoch: int) -> list[tuple[int, int]]:
    """Clip (video, centre) pairs giving each video the same share of an epoch of the usual
    length: short videos repeat, long ones are thinned at an offset that moves each epoch."""
    r = T // 2
    counts = [len(v) - 2 * r for v in videos]
    k = -(-sum(counts) // len(videos))  # ceil: the epoch keeps its length
    phase = (epoch * 0.618034) % 1.0  # golden-ratio steps: thinned videos cycle through
    out = []
    for vi, n in enumerate(counts):
        pos = np.floor((np.arange(k) + phase) * n / k).astype(int) % n
        out += [(vi, r + int(t)) for t in pos]
    return out


def translate(x: torch.Tensor, dx: int, dy: int, fill: float | None = None) -> torch.Tensor:
    """(C, T, H, W) moved by (dx, dy) pixels; the uncovered edge repeats the nearest row or
    column (``fill=None``) or takes ``fill``."""
    H, W = x.shape[-2:]
    ys = torch.arange(H) - int(dy)
    xs = torch.arange(W) - int(dx)
    out = x[..., ys.clamp(0, H - 1)[:, None], xs.clamp(0, W - 1)[None, :]]
    if fill is not None:
        outside = ((ys < 0) | (ys >= H))[:, None] | ((xs < 0) | (xs >= W))[None, :]
        out = out.masked_fill(outside, fill)
    return out


def box_to_pixels(box, H: int, W: int) -> tuple[int, int, int, int]:
    """Normalised [x1, y1, x2, y2] -> integer pixel bounds, at least 1 px wide."""
    x1, y1, x2, y2 = box
    px1, py1 = int(np.floor(x1 * W)), int(np.floor(y1 * H))
    px2, py2 = int(np.ceil(x2 * W)), int(np.ceil(y2 * H))
    px1, py1 = min(max(px1, 0), W - 1), min(max(py1, 0), H - 1)
    return px1, py1, max(min(px2, W), px1 + 1), max(min(py2, H), py1 + 1)
