"""The engine's post-processing: raw patch-max scores -> alert scores -> final scores.

    raw score --steps (post_steps: the median filter)--> alert score --threshold--> alerts
    alert score --per-video min-max (normalize; a whole video only)--> final score

Each step is one object with two forms that give the same values: ``video`` over a whole
video's scores, and ``stream`` for scores arriving one by one. ``ScorePipeline`` chains the
steps the protocol names, so ``ddlvad test``, the calibration and ``predict`` on files
(``alert``), the overlay (``stream()``) and live streams (``stream(live=True)``) share them:
each takes the pipeline of its engine (``ScoreEngine.pipeline``).

A new step (e.g. a causal per-stream normalisation before the median) is a class with
``video`` and ``stream`` placed in ``post_steps``, and its switch a ``ScoreProtocol`` field;
every path above then runs it. Its ``stream(live=True)`` form must give each value at once.

Median filters: ``smooth`` is the centred filter over a whole video (edges: nearest);
``CentredMedian`` gives the same values on a stream, each once the frames after it arrived;
``CausalMedian`` (live streams, which have no future frames) takes the last ``window`` scores.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np
from scipy.ndimage import median_filter

from ddlvad.scoring.protocol import ScoreProtocol

Emitted = list[tuple[int, float]]  # (index in the stream, value), in order


def smooth(scores: np.ndarray, window: int = 17) -> np.ndarray:
    """Median filter over one video's frame scores (edges: nearest); window 0 or 1 = off."""
    if window <= 1 or len(scores) == 0:
        return np.asarray(scores, dtype=np.float64)
    return median_filter(np.asarray(scores, dtype=np.float64), size=window, mode="nearest")


class CentredMedian:
    """``smooth`` computed on a stream: the value of item i comes out once item
    i + (window - 1) // 2 has arrived, or at ``finish``."""

    def __init__(self, window: int) -> None:
        self.w = max(window, 1)
        self.lo, self.hi = self.w // 2, (self.w - 1) // 2  # the window is [i - lo, i + hi]
        self.raw: list[float] = []
        self.next = 0

    def push(self, raw: float) -> Emitted:
        self.raw.append(raw)
        return self._emit(len(self.raw) - 1 - self.hi)

    def finish(self) -> Emitted:
        return self._emit(len(self.raw) - 1)

    def _emit(self, last: int) -> Emitted:
        out = []
        while self.next <= last:
            i = self.next
            # the slice holds i's whole window, or ends where the stream does: ``smooth`` on
            # it gives the value ``smooth`` gives on the whole stream
            a, b = max(i - self.lo, 0), min(i + self.hi + 1, len(self.raw))
            out.append((i, float(smooth(np.asarray(self.raw[a:b]), self.w)[i - a])))
            self.next += 1
        return out


class CausalMedian:
    """Live smoothing: the median of the last ``window`` raw scores (fewer at the start).

    A live stream has no future frames, so this replaces the centred filter of ``ddlvad
    test``; a step in the raw score shows up about window/2 frames later. 0 or 1 = off."""

    def __init__(self, window: int) -> None:
        self.buf: deque[float] = deque(maxlen=max(window, 1))

    def push(self, raw: float) -> float:
        self.buf.append(raw)
        return sorted(self.buf)[len(self.buf) // 2]


class StreamStep(Protocol):
    """A step's stream form: values in one by one, (index, value) out in order."""

    def push(self, value: float) -> Emitted: ...

    def finish(self) -> Emitted: ...


class _AtOnce:
    """A causal function of the values so far as a ``StreamStep``: each value out at once."""

    def __init__(self, push) -> None:
        self.fn, self.n = push, 0

    def push(self, value: float) -> Emitted:
        self.n += 1
        return [(self.n - 1, float(self.fn(value)))]

    def finish(self) -> Emitted:
        return []


class Median:
    """``score.median``: centred over a whole video; on a stream centred (the same values,
    window//2 frames late) or, live, causal (the last ``window`` scores)."""

    def __init__(self, window: int) -> None:
        self.window = window

    def video(self, scores: np.ndarray) -> np.ndarray:
        return smooth(scores, self.window)

    def stream(self, live: bool = False) -> StreamStep:
        return _AtOnce(CausalMedian(self.window).push) if live else CentredMedian(self.window)


def post_steps(p: ScoreProtocol) -> list[Median]:
    """The steps from raw patch-max score to alert score, in order, that ``p`` names."""
    return [Median(p.median)]


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


class ScorePipeline:
    """The post-processing of one protocol: ``alert`` (whole video) / ``stream`` (pushed)
    give the alert score; ``final`` adds per-video min-max when ``normalize`` is on."""

    def __init__(self, protocol: ScoreProtocol) -> None:
        self.protocol = protocol
        self.steps = post_steps(protocol)

    def alert(self, raw: np.ndarray) -> np.ndarray:
        """(N,) raw scores of one whole video -> (N,) alert scores (float64)."""
        out = np.asarray(raw, dtype=np.float64)
        for step in self.steps:
            out = step.video(out)
        return out

    def final(self, raw: np.ndarray, normalize: bool | None = None) -> np.ndarray:
        """The final scores of ``ddlvad test``: alert scores, then per-video min-max when
        ``normalize`` (default: the protocol's) is on."""
        out = self.alert(raw)
        on = self.protocol.normalize if normalize is None else normalize
        return minmax(out) if on else out

    def stream(self, live: bool = False) -> PipelineStream:
        """The alert scores of raw scores pushed one by one (``live``: causal filters)."""
        return PipelineStream([s.stream(live) for s in self.steps])


class PipelineStream:
    """Raw scores in one by one; (frame index, alert score) out in order, at most once each."""

    def __init__(self, steps: list[StreamStep]) -> None:
        self.steps = steps

    def push(self, raw: float) -> Emitted:
        out: Emitted = [(-1, raw)]
        for step in self.steps:
            out = [x for _, v in out for x in step.push(v)]
        return out

    def finish(self) -> Emitted:
        out: Emitted = []
        for step in self.steps:  # what each step still holds goes through the ones after it
            out = [x for _, v in out for x in step.push(v)] + step.finish()
        return out


def ranges_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """0-based inclusive (start, end) index ranges of consecutive True values (alerts)."""
    f = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    d = np.diff(f.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
