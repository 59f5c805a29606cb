"""Random object masking: pick one track present in all T frames of a clip.

Tracks are ``{video: {frame: {track_id: [x1, y1, x2, y2]}}}`` with coordinates normalised to
[0, 1]. Clips with no full-length track follow the ``no_track`` policy: ``skip`` (no
pseudo-anomaly) or ``random`` (a random box of typical object size). ``margin`` grows each
picked box by that fraction of its width and height on every side (clipped to the frame), so
that the noise also covers the object's outline, which small or loose proposals miss.
"""

from __future__ import annotations

import numpy as np

POLICIES = ("skip", "random")
# Why a training clip has (or lacks) a pseudo-anomaly mask (``MaskPicker.pick``'s kind).
MASK_NONE, MASK_TRACK, MASK_RANDOM = 0, 1, 2

Tracks = dict[str, dict[int, dict[int, list[float]]]]


class MaskPicker:
    def __init__(self, tracks: Tracks, policy: str = "skip", margin: float = 0.0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"no-track policy must be one of {POLICIES}, got {policy!r}")
        if not margin >= 0:
            raise ValueError(f"box margin must be a fraction >= 0, got {margin}")
        self.tracks, self.policy, self.margin = tracks, policy, margin
        sizes = [
            (b[2] - b[0], b[3] - b[1])
            for v in tracks.values()
            for f in v.values()
            for b in f.values()
        ]
        # Random boxes take the median tracked-object size (a sane default when none exist).
        self.size = tuple(np.median(sizes, axis=0)) if sizes else (0.1, 0.2)

    def full_tracks(self, video: str, t: int, T: int) -> list[int]:
        """Track ids present in every frame of the window centred on t."""
        frames = self.tracks.get(video, {})
        r = T // 2
        ids: set[int] | None = None
        for k in range(t - r, t + r + 1):
            here = set(frames.get(k, {}))
            ids = here if ids is None else ids & here
            if not ids:
                return []
        return sorted(ids or [])

    def pick(self, video: str, t: int, T: int, rng: np.random.Generator):
        """-> (list of T boxes or None, kind): MASK_NONE, MASK_TRACK or MASK_RANDOM."""
        ids = self.full_tracks(video, t, T)
        r = T // 2
        if ids:
            tid = ids[int(rng.integers(len(ids)))]
            frames = self.tracks[video]
            return [grow(frames[k][tid], self.margin) for k in range(t - r, t + r + 1)], MASK_TRACK
        if self.policy == "random":
            w, h = self.size
            x1, y1 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            return [grow([x1, y1, x1 + w, y1 + h], self.margin)] * T, MASK_RANDOM
        return None, MASK_NONE

    def coverage(self, lengths: dict[str, int], T: int) -> float:
        """Share of training clips with at least one full-length track."""
        r = T // 2
        total = hit = 0
        for video, n in lengths.items():
            for t in range(r, n - r):
                total += 1
                hit += bool(self.full_tracks(video, t, T))
        return hit / total if total else 0.0


def grow(box: list[float], margin: float) -> list[float]:
    """Normalised [x1, y1, x2, y2] grown by margin x (width, height) per side, within [0, 1]."""
    if margin == 0:
        return box
    x1, y1, x2, y2 = box
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return [max(x1 - dx, 0.0), max(y1 - dy, 0.0), min(x2 + dx, 1.0), min(y2 + dy, 1.0)]
