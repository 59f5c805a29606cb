"""Annotated video: the frame with its error heatmap, a running score curve and alert state.

Layout of each output frame (BGR, written through OpenCV):
  top:    the input frame (scaled to ``width``), the per-pixel reconstruction error blended on
          top as a JET heatmap (0 = transparent, ``vmax`` and above = 60 % opaque), a red
          border while the alert is on;
  bottom: the last ``width / 2`` frames' alert scores as a curve (red above the threshold),
          the threshold as a yellow line, and the frame index, time, score and state.
The heatmap's ``vmax`` is twice the threshold (so colours mean the same across videos), or
twice the running median score when there is no threshold.

Codec: ``.mp4`` is H.264 ('avc1', plays in browsers) where the OpenCV build has an H.264
encoder, else MPEG-4 Part 2 ('mp4v', plays in VLC, mpv and ffplay, not in browsers); the
PyPI OpenCV wheels have no software H.264 encoder. ``OverlayWriter.codec`` says which.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ddlvad.data.sources import SourceError

CODECS = {".mp4": ("avc1", "mp4v"), ".avi": ("MJPG",), ".mkv": ("MJPG",)}  # first that opens
STRIP = 96  # height of the score strip, px
PX_PER_FRAME = 2  # horizontal pixels per frame in the score curve
RED, YELLOW, WHITE, GRAY = (0, 0, 255), (0, 215, 255), (235, 235, 235), (90, 90, 90)


class OverlayWriter:
    """Write annotated frames to a video file (.mp4 or .avi); opened on the first frame."""

    def __init__(
        self, path: str | Path, fps: float, threshold: float | None, *, width: int = 480
    ) -> None:
        self.path, self.fps, self.thr, self.width = Path(path), fps, threshold, width
        if self.path.suffix.lower() not in CODECS:
            raise ValueError(f"{self.path}: overlay must be one of {sorted(CODECS)}")
        self.history: deque[float] = deque(maxlen=width // PX_PER_FRAME)
        self.writer: cv2.VideoWriter | None = None
        self.codec: str | None = None  # the fourcc in use, once the first frame is written
        self.frames = 0

    def write(
        self,
        frame: np.ndarray,
        error: np.ndarray | None,
        index: int,
        score: float,
        alert: bool,
        time_s: float | None = None,
    ) -> None:
        """frame: (h, w, 3) RGB uint8; error: (H, W) float error map at the working size."""
        self.history.append(score)
        top = self._frame(frame, error, alert)
        strip = self._strip(top.shape[1], index, score, alert, time_s)
        img = np.vstack([top, strip])
        if self.writer is None:
            self._open(img.shape[1], img.shape[0])
        self.writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def _open(self, w: int, h: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        codecs = CODECS[self.path.suffix.lower()]
        for code in codecs:
            with quiet_stderr():  # FFmpeg reports a missing encoder on fd 2
                writer = cv2.VideoWriter(
                    str(self.path), cv2.VideoWriter_fourcc(*code), self.fps, (w, h)
                )
            if writer.isOpened():
                self.writer, self.codec = writer, code
                return
            writer.release()
        raise SourceError(f"{self.path}: OpenCV cannot write this video file with {codecs}")

    def _vmax(self) -> float:
        if self.thr is not None and self.thr > 0:
            return 2 * self.thr
        return max(2 * float(np.median(self.history)), 1e-6)

    def _frame(self, frame: np.ndarray, error: np.ndarray | None, alert: bool) -> np.ndarray:
        return heat_frame(frame, error, self._vmax(), self.width, alert)

    def _strip(
        self, w: int, index: int, score: float, alert: bool, time_s: float | None
    ) -> np.ndarray:
        img = np.full((STRIP, w, 3), 24, np.uint8)
        hist = np.asarray(self.history)
        top = max(float(hist.max()), 2 * self.thr if self.thr else 0.0, 1e-9) * 1.1
        plot_h = STRIP - 22

        def y(v: float) -> int:
            return int(round(STRIP - 2 - (plot_h - 4) * min(v / top, 1.0)))

        if self.thr is not None:
            cv2.line(img, (0, y(self.thr)), (w - 1, y(self.thr)), YELLOW, 1)
        x0 = w - 1 - PX_PER_FRAME * (len(hist) - 1)
        pts = [(x0 + PX_PER_FRAME * i, y(v)) for i, v in enumerate(hist)]
        for (xa, ya), (xb, yb), v in zip(pts[:-1], pts[1:], hist[1:], strict=True):
            over = self.thr is not None and v > self.thr
            cv2.line(img, (xa, ya), (xb, yb), RED if over else WHITE, 1)
        t = f"  t {time_s:6.1f}s" if time_s is not None else ""
        thr = f" / thr {self.thr:.4f}" if self.thr is not None else ""
        state = "ALERT" if alert else ("ok" if self.thr is not None else "")
        text = f"frame {index}{t}  score {score:.4f}{thr}  {state}"
        cv2.putText(img, text, (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, RED if alert else WHITE)
        cv2.line(img, (0, 0), (w - 1, 0), GRAY, 1)
        return img


def heat_frame(
    frame: np.ndarray, error: np.ndarray | None, vmax: float, width: int, alert: bool = False
) -> np.ndarray:
    """(h, w, 3) RGB frame scaled to ``width`` (even height), its (H, W) error map blended on
    top as a JET heatmap (``vmax`` and above 60 % opaque), a red border on alert: BGR."""
    h0, w0 = frame.shape[:2]
    h = 2 * max(int(round(h0 * width / w0 / 2)), 1)  # even: H.264 needs it
    bgr = cv2.cvtColor(cv2.resize(frame, (width, h)), cv2.COLOR_RGB2BGR)
    if error is not None:
        heat = np.clip(error / vmax, 0, 1).astype(np.float32)
        heat = cv2.resize(heat, (width, h), interpolation=cv2.INTER_LINEAR)
        color = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
        a = 0.6 * heat[:, :, None]
        bgr = (bgr * (1 - a) + color * a).astype(np.uint8)
    if alert:
        cv2.rectangle(bgr, (0, 0), (width - 1, h - 1), RED, 4)
    return bgr


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (native libraries' messages)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
