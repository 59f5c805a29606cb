"""The engine's window step: frame t is scored from the T-frame clip centred on it.

Edge frames (the first and last T//2, which have no full T-window) follow the edge rule
(``protocol.EDGE_RULES``):
- ``clamp``: they are scored from clips whose missing neighbours are the nearest frame;
- ``copy``: only full windows are scored, and each edge frame takes the score (and error
  map) of the nearest full-window frame (the engine copies them).
"""

from __future__ import annotations

from ddlvad.data.clips import window_indices
from ddlvad.scoring.protocol import check_edge


class SlidingWindow:
    """Frame count -> the centred T-windows of frame indices that get scored.

    ``clamp``: every frame is a centre, missing neighbours repeat the nearest frame.
    ``copy``: only full windows are centres (the engine copies their scores to the edges)."""

    def __init__(self, T: int, edge: str = "clamp") -> None:
        check_edge(edge)
        self.T, self.r, self.edge, self.n = T, T // 2, edge, 0
        self.next = 0 if edge == "clamp" else self.r  # next centre to emit

    def push(self) -> list[tuple[int, list[int]]]:
        """Register one more frame; return the windows it completes."""
        self.n += 1
        out = []
        while self.next + self.r < self.n:
            out.append(self._clip(self.next))
            self.next += 1
        return out

    def finish(self) -> list[tuple[int, list[int]]]:
        """End of stream: the right-edge windows (clamp only)."""
        if self.edge == "copy" and self.n < self.T:
            raise ValueError(f"edge rule 'copy' needs at least T = {self.T} frames, got {self.n}")
        out = [self._clip(c) for c in range(self.next, self.n)] if self.edge == "clamp" else []
        self.next = max(self.next, self.n)
        return out

    def _clip(self, c: int) -> tuple[int, list[int]]:
        return c, window_indices(c, self.n, self.T)
