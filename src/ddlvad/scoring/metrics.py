"""Frame- and pixel-level metrics: micro/macro AUC, EER, AP, pixel AUC (numpy + scikit-learn).

Conventions (recorded in metrics.json by ``ddlvad.scoring.evaluate``):
- micro AUC: one ROC AUC over all test frames of all videos, concatenated.
- macro AUC: the mean of per-video AUCs. A video whose frames are all normal (or all
  anomalous) has no defined AUC and is left out; NaN when no video holds both classes.
- EER: the false-positive rate where it equals the miss rate, interpolated linearly
  between the two ROC points that bracket the crossing.
- AP: scikit-learn's average precision (step-wise area under precision-recall).
- pixel AUC: one ROC AUC over all pixels of all frames of the videos that ship pixel masks,
  with the per-pixel error map as score and the mask as label. ``PixelAUC`` accumulates it
  video by video, keeping every ``stride``-th row and column, so long datasets fit in memory.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

MACRO_RULE = "mean of per-video AUCs over videos holding both classes; single-class videos left out"


def _binary(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present."""
    labels = np.asarray(labels).astype(int)
    return float(roc_auc_score(labels, scores)) if _binary(labels) else float("nan")


def micro_auc(labels: list[np.ndarray], scores: list[np.ndarray]) -> float:
    """All test frames concatenated."""
    return auc(np.concatenate(labels), np.concatenate(scores))


def macro_auc(labels: list[np.ndarray], scores: list[np.ndarray]) -> float:
    """Mean of per-video AUCs. Rule: videos with a single class are left out (their AUC is
    undefined); NaN if no video has both classes."""
    vals = [auc(y, s) for y, s in zip(labels, scores, strict=True) if _binary(np.asarray(y))]
    return float(np.mean(vals)) if vals else float("nan")


def macro_videos(labels: list[np.ndarray]) -> int:
    """How many videos enter the macro mean (those holding both classes)."""
    return sum(_binary(np.asarray(y)) for y in labels)


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate meets the miss rate (interpolated)."""
    labels = np.asarray(labels).astype(int)
    if not _binary(labels):
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    if i + 1 < len(fpr) and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        d0, d1 = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        w = d0 / (d0 - d1)
        return float(fpr[i] + w * (fpr[i + 1] - fpr[i]))
    return float((fpr[i] + fnr[i]) / 2)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the step-wise precision-recall curve); NaN if one class."""
    labels = np.asarray(labels).astype(int)
    return float(average_precision_score(labels, scores)) if _binary(labels) else float("nan")


def pixel_auc(masks: np.ndarray, maps: np.ndarray, stride: int = 1) -> float:
    """Pixel ROC AUC of one stack: masks (N, H, W) 0/1, error maps (N, H, W); NaN if one class."""
    acc = PixelAUC(stride)
    acc.add(masks, maps)
    return acc.value()


class PixelAUC:
    """Pixel-level ROC AUC accumulated video by video.

    Each ``add`` keeps pixels ``[:, ::stride, ::stride]`` (a fixed grid, the same for every
    frame) as float32 scores and uint8 labels; ``value`` pools them into one ROC AUC.
    """

    def __init__(self, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"pixel stride must be >= 1, got {stride}")
        self.stride = stride
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def add(self, masks: np.ndarray, maps: np.ndarray) -> None:
        """masks (N, H, W) bool/0-1 and error maps (N, H, W) of one video, same shape."""
        masks, maps = np.asarray(masks), np.asarray(maps)
        if masks.shape != maps.shape or masks.ndim != 3:
            raise ValueError(
                f"pixel masks {masks.shape} and error maps {maps.shape} must both be (N, H, W)"
            )
        s = self.stride
        self._labels.append(masks[:, ::s, ::s].astype(np.uint8).ravel())
        self._scores.append(maps[:, ::s, ::s].astype(np.float32).ravel())

    @property
    def pixels(self) -> int:
        return int(sum(len(y) for y in self._labels))

    @property
    def anomalous_pixels(self) -> int:
        return int(sum(int(y.sum()) for y in self._labels))

    def value(self) -> float:
        """Pooled ROC AUC; NaN when nothing was added or only one class was seen."""
        if not self._labels:
            return float("nan")
        return auc(np.concatenate(self._labels), np.concatenate(self._scores))
