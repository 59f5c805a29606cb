"""The alert rule a site sets: a threshold, a minimum event length and a cooldown.

Frames whose alert score is above the threshold form an event; the event ends at the first
frame at or below it. An event becomes an alert when it lasted at least ``min_event_s``
seconds (end time - start time), and no earlier alert ended less than ``cooldown_s``
seconds before it started (else it is counted as suppressed). An event longer than
``max_event_s`` is decided at that length and a new one may start (subject to the cooldown),
so a scene that stays anomalous still raises an alert now and then. ``ddlvad serve``
decides alerts with it and ``ddlvad calibrate --alarms-per-hour`` counts them with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EPS = 1e-6  # seconds: frame times i / fps are not exact in floating point


@dataclass(frozen=True)
class RuleConfig:
    threshold: float
    min_event_s: float = 0.5
    cooldown_s: float = 10.0
    max_event_s: float = 60.0

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    """One event above the threshold: frames and times inclusive."""

    start_frame: int
    start_t: float
    end_frame: int
    end_t: float
    peak: float
    peak_frame: int
    frames: int = 1
    open: bool = False  # cut by the end of the stream or a shutdown, not by the score


class AlertRule:
    """Scores in one by one (``push``); the alerts decided at each frame out."""

    def __init__(self, cfg: RuleConfig) -> None:
        self.cfg = cfg
        self.event: Event | None = None
        self.last_end: float | None = None  # end time of the last alert
        self.alerts = self.suppressed = self.short = 0

    def push(self, frame: int, t: float, score: float) -> list[Event]:
        """Frame ``frame`` at stream time ``t`` (seconds) scored ``score``."""
        ev, out = self.event, []
        if score > self.cfg.threshold:
            if ev is None:
                self.event = Event(frame, t, frame, t, score, frame)
            else:
                ev.end_frame, ev.end_t, ev.frames = frame, t, ev.frames + 1
                if score > ev.peak:
                    ev.peak, ev.peak_frame = score, frame
                if ev.end_t - ev.start_t >= self.cfg.max_event_s - EPS:
                    out += self._close()
        elif ev is not None:
            out += self._close()
        return out

    def flush(self) -> list[Event]:
        """The event still open at the end of the stream, if it counts."""
        if self.event is not None:
            self.event.open = True
        return self._close()

    def _close(self) -> list[Event]:
        ev, self.event = self.event, None
        if ev is None:
            return []
        if ev.end_t - ev.start_t < self.cfg.min_event_s - EPS:
            self.short += 1
            return []
        if self.last_end is not None and ev.start_t - self.last_end < self.cfg.cooldown_s - EPS:
            self.suppressed += 1
            return []
        self.last_end = ev.end_t
        self.alerts += 1
        return [ev]


def count_alerts(scores, fps: float, cfg: RuleConfig) -> int:
    """Alerts ``cfg`` raises on one video's alert scores at ``fps`` frames per second."""
    rule = AlertRule(cfg)
    n = sum(len(rule.push(i, i / fps, float(s))) for i, s in enumerate(scores))
    return n + len(rule.flush())
