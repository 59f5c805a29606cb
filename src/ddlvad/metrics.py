"""Frame-level metrics: micro/macro AUC, EER, AP (numpy + scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


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
    labels = np.asarray(labels).astype(int)
    return float(average_precision_score(labels, scores)) if _binary(labels) else float("nan")
