"""Checks of proposals and tracks against known boxes (synthetic scenes): recall, ID switches."""

from __future__ import annotations

import numpy as np

from ddlvad.objects.tracking import iou_matrix


def proposal_recall(true: list[list], proposed: list[np.ndarray], iou: float = 0.5) -> float:
    """Share of true boxes (per frame lists of (id, anomalous, box)) hit by a proposal."""
    hit = total = 0
    for objs, boxes in zip(true, proposed, strict=True):
        if not objs:
            continue
        tb = np.array([b for _, _, b in objs])
        total += len(tb)
        if len(boxes):
            hit += int((iou_matrix(tb, np.asarray(boxes)).max(1) >= iou).sum())
    return hit / total if total else 1.0


def id_switches(true: list[list], tracks: dict[int, dict[int, list]], iou: float = 0.5) -> dict:
    """For each true object, follow the track id matched to it frame by frame (best IoU >= iou);
    a change of matched id between consecutive matches is one switch (MOT convention)."""
    last: dict[int, int] = {}
    switches = matches = 0
    for f, objs in enumerate(true):
        fr = tracks.get(f, {})
        if not objs or not fr:
            continue
        tids = list(fr)
        m = iou_matrix(np.array([b for _, _, b in objs]), np.array([fr[t] for t in tids]))
        for i, (oid, _, _) in enumerate(objs):
            j = int(m[i].argmax())
            if m[i, j] < iou:
                continue
            matches += 1
            if oid in last and last[oid] != tids[j]:
                switches += 1
            last[oid] = tids[j]
    return {"switches": switches, "matches": matches, "objects": len(last)}
