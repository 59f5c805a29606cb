"""Boxes -> tracks. OC-SORT comes from the maintained ``trackers`` library (extra ``track``);
``iou`` is a greedy IoU association kept as a dependency-free first cut.

Output per video: ``{frame: {track_id: [x1, y1, x2, y2]}}``, coordinates normalised.
"""

from __future__ import annotations

import numpy as np

TRACKERS = ("ocsort", "iou")  # plus "given": ids from user detections (objects/store.py)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4), (m, 4) xyxy -> (n, m) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def track_iou(boxes: list[np.ndarray], iou_threshold: float = 0.3) -> dict[int, dict[int, list]]:
    """Greedy frame-to-frame IoU association (no motion model, no re-identification)."""
    out: dict[int, dict[int, list]] = {}
    prev_boxes, prev_ids = np.zeros((0, 4)), []
    next_id = 1
    for f, cur in enumerate(boxes):
        cur = np.asarray(cur).reshape(-1, 4)
        ids = [-1] * len(cur)
        iou = iou_matrix(prev_boxes, cur)
        while iou.size and iou.max() >= iou_threshold:
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            ids[j] = prev_ids[i]
            iou[i, :] = -1
            iou[:, j] = -1
        for j in range(len(cur)):
            if ids[j] == -1:
                ids[j], next_id = next_id, next_id + 1
        out[f] = {tid: [float(v) for v in b] for tid, b in zip(ids, cur, strict=True)}
        prev_boxes, prev_ids = cur, ids
    return out


def track_ocsort(
    boxes: list[np.ndarray], *, iou_threshold: float = 0.3, frame_size: tuple[int, int] = (256, 256)
) -> dict[int, dict[int, list]]:
    """OC-SORT via ``trackers.OCSORTTracker`` on pixel boxes; returns normalised boxes."""
    try:
        import supervision as sv
        from trackers import OCSORTTracker
    except ImportError as e:
        raise ImportError(
            "OC-SORT tracking needs the 'track' extra: pip install 'ddlvad[track]' "
            "(or use objects.tracker=iou)"
        ) from e
    H, W = frame_size
    scale = np.array([W, H, W, H], dtype=np.float64)
    # Tracks are confirmed after 1 frame so that short training windows keep their objects.
    tracker = OCSORTTracker(minimum_consecutive_frames=1, minimum_iou_threshold=iou_threshold)
    out: dict[int, dict[int, list]] = {}
    for f, cur in enumerate(boxes):
        cur = np.asarray(cur, dtype=np.float64).reshape(-1, 4)
        det = sv.Detections(xyxy=cur * scale) if len(cur) else sv.Detections.empty()
        res = tracker.update(det)
        frame: dict[int, list] = {}
        for xyxy, tid in zip(res.xyxy, res.tracker_id, strict=True):
            if tid >= 0:
                frame[int(tid)] = [float(v) for v in np.clip(xyxy / scale, 0, 1)]
        out[f] = frame
    return out


def track(boxes: list[np.ndarray], method: str = "ocsort", **kw) -> dict[int, dict[int, list]]:
    if method == "ocsort":
        return track_ocsort(boxes, **kw)
    if method == "iou":
        return track_iou(boxes, kw.get("iou_threshold", 0.3))
    raise ValueError(f"unknown tracker {method!r}; choose from {TRACKERS}")
