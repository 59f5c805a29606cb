"""Live mode: score a camera, an RTSP/HTTP stream, or a video file played as one.

A reader thread grabs frames into a short queue (``max_queue`` frames); when scoring falls
behind, the oldest queued frames are dropped and counted, so latency stays bounded by about
``max_queue / fps`` plus one batch. The main loop takes what is queued (up to one batch),
scores it, and prints one status line per second.

Causality: a frame's window needs the T // 2 frames after it, so its score comes out T // 2
frames late (plus the batch); the median filter is causal (the last ``score.median``
scores, see ``scoring.post.CausalMedian``) instead of the centred one of ``ddlvad
test``. Dropped frames are simply missing from the window (their neighbours become
adjacent). Ctrl-C stops cleanly: the frames already read are scored and the outputs written.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ddlvad.data.sources import SourceError, SourceWarning
from ddlvad.infer.capture import Grabber, open_capture
from ddlvad.infer.detector import Detector
from ddlvad.infer.overlay import OverlayWriter
from ddlvad.scoring.engine import Scored


class LiveRun:
    """State of one live session: rows, latencies, status lines, optional overlay."""

    def __init__(self, det: Detector, grab: Grabber, overlay: OverlayWriter | None, log) -> None:
        self.det, self.grab, self.overlay, self.log = det, grab, overlay, log
        self.med = det.pipeline.stream(live=True)  # causal: a stream has no future frames
        self.rows: list[tuple[int, float, float, float, bool]] = []
        self.latency: list[float] = []
        self.t0 = self.last_print = time.perf_counter()
        self.printed = -1  # frame index of the last status line

    def emit(self, results: list[Scored]) -> None:
        thr = self.det.threshold
        for r in results:
            idx, t_grab, img = r.meta
            ((_, s),) = self.med.push(r.raw)  # causal steps give each score at once
            alert = thr is not None and s > thr
            now = time.perf_counter()
            self.latency.append(now - t_grab)
            self.rows.append((idx, t_grab - self.t0, r.raw, s, alert))
            if self.overlay is not None:
                self.overlay.write(img, r.error, idx, s, alert, t_grab - self.t0)
        if results and time.perf_counter() - self.last_print >= 1.0:
            self.status()

    def status(self) -> None:
        now = time.perf_counter()
        self.last_print = now
        idx, _, _, s, alert = self.rows[-1]
        self.printed = idx
        el = max(now - self.t0, 1e-9)
        thr = self.det.threshold
        state = ("ALERT" if alert else "ok") if thr is not None else "no threshold"
        thr_s = f"{thr:.4f}" if thr is not None else "-"
        self.log(
            f"[{el:7.1f} s] frame {idx:7d} | score {s:.4f} | threshold {thr_s} | {state:5s} | "
            f"in {self.grab.read / el:6.1f} fps | scored {len(self.rows) / el:6.1f} fps | "
            f"dropped {self.grab.dropped} | latency {1000 * self.latency[-1]:.0f} ms"
        )

    def summary(self, interrupted: bool) -> dict[str, Any]:
        el = time.perf_counter() - self.t0
        lat = np.asarray(self.latency) * 1000 if self.latency else np.zeros(1)
        return {
            "frames_read": self.grab.read,
            "frames_scored": len(self.rows),
            "frames_dropped": self.grab.dropped,
            "interrupted": interrupted,
            "seconds": round(el, 2),
            "fps_in": round(self.grab.read / max(el, 1e-9), 2),
            "fps_scored": round(len(self.rows) / max(el, 1e-9), 2),
            "latency_ms": {
                "mean": round(float(lat.mean()), 1),
                "p95": round(float(np.percentile(lat, 95)), 1),
                "max": round(float(lat.max()), 1),
            },
        }


def run_live(
    det: Detector,
    target: int | str,
    *,
    max_frames: int = 0,
    max_queue: int = 0,
    pace: float | None = None,
    overlay: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[tuple[int, float, float, float, bool]], dict[str, Any]]:
    """Score a stream until it ends, ``max_frames`` are read, or Ctrl-C.

    Returns rows (frame, time_s, raw, smoothed, alert) and a summary dict."""
    cap = open_capture(target)
    fps = pace or float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # files and some HTTP streams; else <= 0
    grab = Grabber(
        target,
        cap=cap,
        max_frames=max_frames,
        max_queue=max_queue or det.batch_size,
        pace=pace,
        reconnect=False,
        log=log,
    )
    writer = OverlayWriter(overlay, fps, det.threshold) if overlay else None
    live = LiveRun(det, grab, writer, log)
    sc = det.scorer(keep_error=writer is not None)
    interrupted = False
    grab.start()
    try:
        while not grab.finished():
            for idx, t, img in grab.get(det.batch_size):
                sc.push(det.prepare(img), (idx, t, img if writer else None))
            live.emit(sc.run())
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: scoring the frames already read, then writing the outputs")
    finally:
        grab.stop()
    try:
        live.emit(sc.finish())
    finally:
        if writer is not None:
            writer.close()
        grab.join(timeout=2.0)
    if grab.error is not None:
        raise SourceError(f"{target}: reading the stream failed ({grab.error})")
    if live.rows and live.rows[-1][0] != live.printed:
        live.status()  # the final state, unless the last line already showed it
    stats = {**live.summary(interrupted), "source_fps": fps}
    if writer is not None:
        stats["overlay_codec"] = writer.codec
    capped = max_frames and grab.read >= max_frames
    if not interrupted and not capped and 0 < grab.read < expected:
        stats["frames_expected"] = expected
        stats["warnings"] = [
            f"{target}: the stream ended after {grab.read} of the {expected} frames its "
            f"container declares (cut short or damaged?); scored the {grab.read} read"
        ]
        warnings.warn(stats["warnings"][0], SourceWarning, stacklevel=2)
    return live.rows, stats
