"""Live mode: score a camera, an RTSP/HTTP stream, or a video file played as one.

A reader thread (``infer.capture.Grabber``) grabs frames into a short queue (``max_queue``
frames); when scoring falls behind, the oldest queued frames are dropped and counted, so
latency stays bounded by about ``max_queue / fps`` plus one batch. A stream or camera that
fails is reopened with backoff (logged and counted) until it stays down ``give_up_s``
seconds. The main loop takes what is queued (up to one batch), scores it, and prints one
status line per second.

Outputs are written as frames are scored (``LiveTables``): scores.csv rows flushed each
second, each alert range to alerts.csv as it closes. Memory stays bounded: no row is kept,
latency statistics come from the last ``LATENCY_KEEP`` frames.

Causality: a frame's window needs the T // 2 frames after it, so its score comes out T // 2
frames late (plus the batch); the median filter is causal (the last ``score.median``
scores, see ``scoring.post.CausalMedian``) instead of the centred one of ``ddlvad
test``. Dropped frames are simply missing from the window (their neighbours become
adjacent). Ctrl-C and SIGTERM stop cleanly: the frames already read are scored, the open
alert range closed, and the outputs completed.
"""

from __future__ import annotations

import contextlib
import csv
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ddlvad.data.sources import SourceError, warn_source
from ddlvad.infer.capture import Grabber, is_file, open_capture
from ddlvad.infer.detector import Detector
from ddlvad.infer.overlay import OverlayWriter
from ddlvad.infer.tables import ALERT_COLUMNS, SCORE_COLUMNS, alert_row, score_row
from ddlvad.scoring.engine import Scored

LATENCY_KEEP = 10_000  # frames the latency percentiles are taken over


class LiveTables:
    """scores.csv and alerts.csv of one stream, written as it is scored (``out`` None: only
    the alert ranges are tracked, in ``alerts``)."""

    def __init__(self, out: Path | None, video: str) -> None:
        self.video = video
        self.alerts: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None
        self.files, self.last_flush = [], 0.0
        self.scores = self.alert_w = None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for name, cols in (("scores.csv", SCORE_COLUMNS), ("alerts.csv", ALERT_COLUMNS)):
                f = (out / name).open("w", newline="", encoding="utf-8")
                csv.writer(f).writerow(cols)
                self.files.append(f)
            self.scores, self.alert_w = (csv.writer(f) for f in self.files)

    def row(self, idx: int, t: float, raw: float, s: float, alert: bool) -> None:
        if self.scores is not None:
            self.scores.writerow(score_row(self.video, idx, t, raw, s, alert))
        if alert:
            a = self.open
            if a is None:
                self.open = {"start_frame": idx, "start_s": t, "frames": 0, "peak": s}
                a = self.open
            a.update(end_frame=idx, end_s=t, frames=a["frames"] + 1, peak=max(a["peak"], s))
        elif self.open is not None:
            self._close()
        if time.monotonic() - self.last_flush >= 1.0:
            self.flush()

    def _close(self) -> None:
        a, self.open = self.open, None
        self.alerts.append(a)
        if self.alert_w is not None:
            self.alert_w.writerow(alert_row(self.video, a))

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        for f in self.files:
            f.flush()

    def close(self) -> None:
        if self.open is not None:
            self._close()
        for f in self.files:
            f.close()
        self.files = []


class LiveRun:
    """State of one live session: counts, recent latencies, status lines, outputs."""

    def __init__(
        self,
        det: Detector,
        grab: Grabber,
        overlay: OverlayWriter | None,
        tables: LiveTables,
        log,
    ) -> None:
        self.det, self.grab, self.overlay, self.tables, self.log = det, grab, overlay, tables, log
        self.med = det.pipeline.stream(live=True)  # causal: a stream has no future frames
        self.scored = 0
        self.last: tuple[int, float, float, float, bool] | None = None
        self.latency: deque[float] = deque(maxlen=LATENCY_KEEP)
        self.lat_sum, self.lat_max = 0.0, 0.0
        self.t0 = self.last_print = time.perf_counter()
        self.printed = -1  # frame index of the last status line

    def emit(self, results: list[Scored]) -> None:
        thr = self.det.threshold
        for r in results:
            idx, t_grab, img = r.meta
            ((_, s),) = self.med.push(r.raw)  # causal steps give each score at once
            alert = thr is not None and s > thr
            lat = time.perf_counter() - t_grab
            self.latency.append(lat)
            self.lat_sum, self.lat_max = self.lat_sum + lat, max(self.lat_max, lat)
            self.scored += 1
            self.last = (idx, t_grab - self.t0, r.raw, s, alert)
            self.tables.row(*self.last)
            if self.overlay is not None:
                self.overlay.write(img, r.error, idx, s, alert, t_grab - self.t0)
        if results and time.perf_counter() - self.last_print >= 1.0:
            self.status()

    def status(self) -> None:
        now = time.perf_counter()
        self.last_print = now
        idx, _, _, s, alert = self.last
        self.printed = idx
        el = max(now - self.t0, 1e-9)
        thr = self.det.threshold
        state = ("ALERT" if alert else "ok") if thr is not None else "no threshold"
        thr_s = f"{thr:.4f}" if thr is not None else "-"
        self.log(
            f"[{el:7.1f} s] frame {idx:7d} | score {s:.4f} | threshold {thr_s} | {state:5s} | "
            f"in {self.grab.read / el:6.1f} fps | scored {self.scored / el:6.1f} fps | "
            f"dropped {self.grab.dropped} | latency {1000 * self.latency[-1]:.0f} ms"
        )

    def summary(self, interrupted: bool) -> dict[str, Any]:
        el = time.perf_counter() - self.t0
        lat = np.asarray(self.latency) * 1000 if self.latency else np.zeros(1)
        return {
            "frames_read": self.grab.read,
            "frames_scored": self.scored,
            "frames_dropped": self.grab.dropped,
            "reconnects": self.grab.reconnects,
            "interrupted": interrupted,
            "seconds": round(el, 2),
            "fps_in": round(self.grab.read / max(el, 1e-9), 2),
            "fps_scored": round(self.scored / max(el, 1e-9), 2),
            "latency_ms": {
                "mean": round(1000 * self.lat_sum / max(self.scored, 1), 1),
                "p95": round(float(np.percentile(lat, 95)), 1),  # of the last LATENCY_KEEP
                "max": round(1000 * self.lat_max, 1),
            },
        }


@contextlib.contextmanager
def sigterm_stops(stop: Callable[[], None]) -> Iterator[dict[str, str]]:
    """SIGTERM (a service stop) calls ``stop`` (in the main thread only): the run ends as
    after Ctrl-C. Yields a dict whose ``signal`` is set once the signal came."""
    got: dict[str, str] = {}
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_term(signum, _frame) -> None:
        got["signal"] = signal.Signals(signum).name
        stop()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, old)


def run_live(
    det: Detector,
    target: int | str,
    *,
    max_frames: int = 0,
    max_queue: int = 0,
    pace: float | None = None,
    overlay: Path | None = None,
    out: Path | None = None,
    video: str = "",
    give_up_s: float = 60.0,
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score a stream until it ends, ``max_frames`` are read, Ctrl-C or SIGTERM; write
    ``out``/scores.csv and alerts.csv as it goes (when ``out`` is given).

    Returns the alert ranges (start/end frame and time, frames, peak) and a summary dict."""
    cap = open_capture(target)
    fps = pace or float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # files and some HTTP streams; else <= 0
    grab = Grabber(
        target,
        cap=cap,
        max_frames=max_frames,
        max_queue=max_queue or det.batch_size,
        pace=pace,
        reconnect=not is_file(target),
        end_at_count=True,
        give_up_s=give_up_s,
        log=log,
    )
    writer = OverlayWriter(overlay, fps, det.threshold) if overlay else None
    tables = LiveTables(out, video or str(target))
    live = LiveRun(det, grab, writer, tables, log)
    sc = det.scorer(keep_error=writer is not None)
    interrupted = False
    with sigterm_stops(grab.stop) as got:
        grab.start()
        try:
            while not grab.finished():
                for idx, t, img in grab.get(det.batch_size):
                    sc.push(det.prepare(img), (idx, t, img if writer else None))
                live.emit(sc.run())
        except KeyboardInterrupt:
            interrupted = True
        finally:
            grab.stop()
        interrupted = interrupted or bool(got)
        if interrupted:
            why = got.get("signal", "interrupted")
            log(f"{why}: scoring the frames already read, then writing the outputs")
        try:
            live.emit(sc.finish())
        finally:
            tables.close()
            if writer is not None:
                writer.close()
            grab.join(timeout=2.0)
    if grab.error is not None:
        raise SourceError(f"{target}: reading the stream failed ({grab.error})")
    if live.last is not None and live.last[0] != live.printed:
        live.status()  # the final state, unless the last line already showed it
    stats = {**live.summary(interrupted), "source_fps": fps}
    if got:
        stats["stopped_by"] = got["signal"]
    if writer is not None:
        stats["overlay_codec"] = writer.codec
    _stream_warnings(stats, str(target), grab, expected, interrupted)
    return tables.alerts, stats


def _stream_warnings(
    stats: dict[str, Any], target: str, grab: Grabber, expected: int, interrupted: bool
) -> None:
    """Warn (and record) a stream cut short of the frames its container declares, and a
    stream that was lost and reconnected."""
    notes = []
    capped = grab.max_frames and grab.read >= grab.max_frames
    if not interrupted and not capped and 0 < grab.read < expected and not grab.reconnects:
        stats["frames_expected"] = expected
        notes.append(
            f"{target}: the stream ended after {grab.read} of the {expected} frames its "
            f"container declares (cut short or damaged?); scored the {grab.read} read"
        )
    if grab.reconnects or (grab.reconnect and grab.last_error):
        notes.append(
            f"{target}: the source was lost and reopened {grab.reconnects} time(s) "
            f"(last error: {grab.last_error or '-'}); frame numbers run on across the gaps"
        )
    warn_source(notes, stats)
