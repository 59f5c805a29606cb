"""One camera: a worker thread that reads its source (``infer.capture.Grabber``: loop,
reconnect), scores every frame through the detector's engine session, applies the alert rule,
and keeps bounded state for the dashboard (``snapshot``).

Memory is bounded: the last ``timeline`` scores, the last ``clip_s`` seconds of display
frames (JPEG bytes, for clips), the grabber's short queue. Scores go to
``OUT/<camera>/scores.csv`` as they come (flushed each second, rolled over to
``scores.1.csv`` at ``ROLL_BYTES``). The alert score is the causal one of live mode (the
median of the last ``score.median`` raw scores).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ddlvad.infer.capture import Grabber
from ddlvad.infer.detector import Detector
from ddlvad.infer.overlay import heat_frame
from ddlvad.scoring.engine import Scored
from ddlvad.serve.alerts import AlertWriter, iso
from ddlvad.serve.rules import AlertRule, Event, RuleConfig

ROLL_BYTES = 64 << 20
GAP_S = 2.0  # frames further apart than this (a lost source) end the open event


@dataclass(frozen=True)
class CameraSpec:
    """A camera's name, its source (index, URL or file) and how to read it."""

    name: str
    target: int | str
    fps: float  # the source's frame rate (files: their own; else a guess for clip timing)
    pace: float | None = None  # play a file at this rate (None: as fast as scored)
    loop: bool = False


class ScoresFile:
    """``scores.csv`` appended as frames are scored; flushed each second; rolled at a size."""

    HEADER = "time,frame,raw,score,alert\n"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = None
        self.last_flush = 0.0

    def write(self, t: float, frame: int, raw: float, score: float, alert: bool) -> None:
        if self.f is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.f = self.path.open("a", encoding="utf-8")
            if new:
                self.f.write(self.HEADER)
        self.f.write(f"{iso(t)},{frame},{raw:.6g},{score:.6g},{int(alert)}\n")
        now = time.monotonic()
        if now - self.last_flush >= 1.0:
            self.last_flush = now
            self.f.flush()
            if self.f.tell() >= ROLL_BYTES:
                self.f.close()
                self.path.replace(self.path.with_name("scores.1.csv"))
                self.f = None

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


class Camera(threading.Thread):
    """Read, score, decide, for one camera until ``stop`` or the source ends for good."""

    def __init__(
        self,
        spec: CameraSpec,
        det: Detector,
        rule: RuleConfig,
        out: Path,
        writer: AlertWriter,
        *,
        mask: np.ndarray | None = None,
        max_queue: int = 0,
        clip_s: float = 10.0,
        preroll_s: float = 2.0,
        timeline: int = 1200,
        width: int = 320,
        give_up_s: float = 0.0,
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__(daemon=True, name=f"camera-{spec.name}")
        self.spec, self.det, self.out, self.writer = spec, det, out, writer
        self.rule, self.mask, self.width, self.log = AlertRule(rule), mask, width, log
        self.preroll = int(round(preroll_s * spec.fps))
        self.grab = Grabber(
            spec.target,
            max_queue=max_queue or 2 * det.batch_size,
            pace=spec.pace,
            loop=spec.loop,
            block=spec.pace is None and isinstance(spec.target, str) and "://" not in spec.target,
            give_up_s=give_up_s,
            log=lambda s: log(f"[{spec.name}] {s}"),
        )
        self.frames: deque[tuple[int, bytes]] = deque(maxlen=max(int(clip_s * spec.fps), 8))
        self.timeline: deque[tuple[int, float, int, float]] = deque(maxlen=timeline)
        self.latency: deque[float] = deque(maxlen=200)
        self.rates: deque[float] = deque(maxlen=64)  # monotonic times of recent scored frames
        self.scores = ScoresFile(out / spec.name / "scores.csv")
        self.seq = self.scored = 0
        self.latest: bytes | None = None
        self.latest_score: float | None = None
        self.started = time.time()
        self.error = ""
        self._peak: tuple[int, float, bytes] | None = None
        self._halt = threading.Event()

    # --- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        det = self.det
        sc = det.scorer(keep_error=True, mask=self.mask)
        self.med = det.pipeline.stream(live=True)
        self.grab.start()
        try:
            while not self._halt.is_set() and not self.grab.finished():
                for idx, t, img in self.grab.get(det.batch_size):
                    sc.push(det.prepare(img), (idx, t, img))
                self._emit(sc.run())
            self.grab.stop()
            self._emit(sc.finish())
            for ev in self.rule.flush():
                self._alert(ev)
        except BaseException as e:  # shown on the page and in summary.json
            self.error = f"{type(e).__name__}: {e}"
            self.log(f"[{self.spec.name}] stopped: {self.error}")
        finally:
            self.grab.stop()
            self.scores.close()
        if self.grab.error is not None:
            self.error = f"reading {self.spec.target} failed: {self.grab.error}"

    def stop(self) -> None:
        self._halt.set()
        self.grab.stop()

    def _emit(self, results: list[Scored]) -> None:
        thr = self.rule.cfg.threshold
        for r in results:
            idx, t_grab, img = r.meta
            ((_, s),) = self.med.push(r.raw)
            now = time.perf_counter()
            wall = time.time() - (now - t_grab)
            self.latency.append(now - t_grab)
            self.rates.append(time.monotonic())
            if self.timeline and wall - self.timeline[-1][1] > GAP_S:
                for ev in self.rule.flush():  # the source was lost: no event spans the gap
                    self._alert(ev)
                self._peak = None
            over = s > thr
            jpeg = self._display(img, r.error, idx, wall, s, over)
            self.frames.append((idx, jpeg))
            self.latest, self.latest_score = jpeg, s
            self.seq += 1
            self.scored += 1
            self.timeline.append((self.seq, wall, idx, s))
            self.scores.write(wall, idx, r.raw, s, over)
            if over and (self._peak is None or s > self._peak[1]):
                self._peak = (idx, s, jpeg)
            for ev in self.rule.push(idx, wall, s):
                self._alert(ev)
            if self.rule.event is None:
                self._peak = None

    def _display(
        self, img: np.ndarray, err: np.ndarray | None, idx: int, t: float, s: float, over: bool
    ) -> bytes:
        bgr = heat_frame(img, err, 2 * max(self.rule.cfg.threshold, 1e-6), self.width, over)
        text = f"{self.spec.name}  {iso(t)[11:23]}  #{idx}  {s:.4f}"
        cv2.putText(bgr, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
        return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()

    # --- alerts ------------------------------------------------------------------------
    def _alert(self, ev: Event) -> None:
        """Hand the decided alert to the writer (snapshot, clip, alerts.jsonl, hooks)."""
        frames = [(i, j) for i, j in self.frames if ev.start_frame - self.preroll <= i]
        frames = [(i, j) for i, j in frames if i <= ev.end_frame] or list(self.frames)[-1:]
        peak = self._peak[2] if self._peak and self._peak[0] == ev.peak_frame else None
        peak = peak or next((j for i, j in frames if i == ev.peak_frame), frames[-1][1])
        record = {
            "id": 0,  # the writer gives the id and the file names
            "camera": self.spec.name,
            "source": str(self.spec.target),
            "start_time": iso(ev.start_t),
            "end_time": iso(ev.end_t),
            "start_frame": ev.start_frame,
            "end_frame": ev.end_frame,
            "frames": ev.frames,
            "peak_score": round(ev.peak, 6),
            "peak_frame": ev.peak_frame,
            "threshold": self.rule.cfg.threshold,
            "snapshot": "",
            "clip": "",
            "clip_frames": [frames[0][0], frames[-1][0]],
            "open": ev.open,
        }
        aid = self.writer.submit(record, peak, [j for _, j in frames], self.spec.fps)
        self.log(
            f"[{self.spec.name}] ALERT {aid}: frames {ev.start_frame}-{ev.end_frame}, "
            f"peak {ev.peak:.4f} (threshold {self.rule.cfg.threshold:.4f})"
        )

    # --- state for the page and the API ------------------------------------------------
    def fps(self) -> float:
        r = list(self.rates)
        return (len(r) - 1) / (r[-1] - r[0]) if len(r) > 1 and r[-1] > r[0] else 0.0

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self.latency)
        g = self.grab
        return {
            "name": self.spec.name,
            "source": str(self.spec.target),
            "state": "error" if self.error else g.state,
            "error": self.error or g.last_error,
            "threshold": self.rule.cfg.threshold,
            "score": self.latest_score,
            "frames_read": g.read,
            "frames_scored": self.scored,
            "dropped": g.dropped,
            "reconnects": g.reconnects,
            "loops": g.loops,
            "fps": round(self.fps(), 2),
            "latency_ms": round(1000 * lat[-1], 1) if lat else None,
            "latency_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "alerts": self.rule.alerts,
            "suppressed": self.rule.suppressed,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def points(self, after: int = 0) -> list[list[float]]:
        """Timeline points [seq, unix time, frame, score] with seq > ``after``."""
        return [[q, round(t, 3), i, round(s, 6)] for q, t, i, s in list(self.timeline) if q > after]
