"""Frames from a camera, an RTSP/HTTP stream or a video file, read on a thread that survives
source loss: ``predict --live`` and ``serve`` both read through ``Grabber``.

A reader thread grabs frames into a short queue (``max_queue`` frames); when scoring falls
behind, the oldest queued frames are dropped and counted, so latency stays bounded. When a
read fails, a file with ``loop`` starts again from its first frame; otherwise the source is
reopened with exponential backoff (``Backoff``: 0.5 s doubling to 30 s), each attempt
logged and counted, until it comes back or stays down longer than ``give_up_s`` (0: never
give up). Frame indices keep counting across loops and reconnects.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ddlvad.data.sources import SourceError, utf8_path

NET_TIMEOUT_S = 10.0  # a URL's open / read timeout
Item = tuple[int, float, np.ndarray]  # (frame index in the stream, perf_counter at grab, RGB)


def open_capture(target: int | str, timeout_s: float = NET_TIMEOUT_S) -> cv2.VideoCapture:
    """cv2.VideoCapture for a camera index, URL or file; SourceError when it cannot open.
    A URL's open and each read give up after ``timeout_s`` (a stalled stream is then a
    failed read, which ``Grabber`` reconnects, rather than a read blocked for ever)."""
    if isinstance(target, str) and "://" not in target and not Path(target).is_file():
        raise SourceError(f"{target}: video file not found")
    if isinstance(target, str) and "://" in target:
        ms = int(timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
    else:
        cap = cv2.VideoCapture(target if isinstance(target, int) else utf8_path(target))
    if not cap.isOpened():
        cap.release()
        raise SourceError(
            f"{target}: cannot open as a stream; expected a camera index, an RTSP/HTTP URL or "
            f"a video file that OpenCV (FFmpeg) can decode"
        )
    return cap


def is_file(target: int | str) -> bool:
    """A local video file (not a camera index, not a URL)."""
    return isinstance(target, str) and "://" not in target


class Backoff:
    """Delays between reconnect attempts: ``first`` doubling up to ``cap`` seconds."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        d, self.delay = self.delay, min(self.delay * 2, self.cap)
        return d

    def reset(self) -> None:
        self.delay = self.first


class Grabber(threading.Thread):
    """Reads frames into a bounded queue; a full queue drops its oldest frame.

    ``opener`` opens the source (default ``open_capture(target)``); ``pace`` plays a file at
    that frame rate; ``loop`` replays a file; ``end_at_count``: a stream read to the frame
    count it declares has ended (not lost); ``block`` waits for room in the queue instead
    of dropping (a file read as fast as it is scored); ``reconnect`` reopens a lost source (with
    ``give_up_s`` as above). ``reconnects``, ``loops``, ``state`` and ``last_error`` are for
    status pages."""

    def __init__(
        self,
        target: int | str,
        *,
        cap: cv2.VideoCapture | None = None,
        max_frames: int = 0,
        max_queue: int = 16,
        pace: float | None = None,
        loop: bool = False,
        block: bool = False,
        reconnect: bool = True,
        end_at_count: bool = False,
        give_up_s: float = 0.0,
        backoff: Backoff | None = None,
        log: Callable[[str], None] = print,
        opener: Callable[[int | str], cv2.VideoCapture] = open_capture,
    ) -> None:
        super().__init__(daemon=True)  # a blocked network read must not hold up exit
        self.target, self.cap, self.opener, self.log = target, cap, opener, log
        self.max_frames, self.pace, self.loop, self.block = max_frames, pace, loop, block
        self.reconnect, self.give_up_s = reconnect and not is_file(target), give_up_s
        self.end_at_count = end_at_count
        self.backoff = backoff or Backoff()
        self.queue: deque[Item] = deque(maxlen=max(max_queue, 1))
        self.cond = threading.Condition()
        self.read = self.dropped = self.reconnects = self.loops = 0
        self.state = "connecting"
        self.last_error = ""
        self.done = False
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set() and self._connect():
                ended = self._read_until_lost()
                if self.cap is not None:
                    self.cap.release()
                    self.cap = None
                if ended or not (self.loop or self.reconnect) or self._capped():
                    break
        except BaseException as e:  # reported by the main loop
            self.error = e
        finally:
            if self.cap is not None:
                self.cap.release()
            self.state = "stopped"
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def _capped(self) -> bool:
        return bool(self.max_frames and self.read >= self.max_frames)

    def _connect(self) -> bool:
        """Open the source (again), with backoff; False once halted or given up."""
        if self.cap is not None:
            return True
        down_since = time.monotonic()
        first = self.read == 0 and self.reconnects == 0 and self.loops == 0
        while not self._halt.is_set():
            try:
                self.cap = self.opener(self.target)
                if not first and not (self.loop and is_file(self.target)):
                    self.reconnects += 1
                    self.log(f"{self.target}: reconnected (reconnect {self.reconnects})")
                self.backoff.reset()
                self.state = "live"
                return True
            except SourceError as e:
                if first and not self.reconnect:
                    raise
                self.last_error = str(e)
            down = time.monotonic() - down_since
            if self.give_up_s and down >= self.give_up_s:
                self.log(f"{self.target}: still down after {down:.0f} s; giving up")
                return False
            delay = self.backoff.next()
            self.state = "reconnecting"
            self.log(f"{self.target}: source lost ({self.last_error}); retry in {delay:.1f} s")
            self._halt.wait(delay)
        return False

    def _read_until_lost(self) -> bool:
        """Read until the source fails or halts; True when it ended for good (a finite
        stream read to the frame count it declares, under ``end_at_count``)."""
        t0, n0 = time.perf_counter(), 0
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.end_at_count else 0
        while not self._halt.is_set() and not self._capped():
            ok, img = self.cap.read()
            if not ok:
                if self.loop and is_file(self.target):
                    self.loops += 1
                    return False
                ended = 0 < count <= n0
                if self.reconnect and not ended:
                    self.last_error = f"read failed after frame {self.read}"
                    self.state = "reconnecting"
                    self.log(f"{self.target}: {self.last_error}; reconnecting")
                return ended
            if self.pace:  # a file played as a camera: frame i is due at t0 + i / fps
                self._halt.wait(max(0.0, t0 + n0 / self.pace - time.perf_counter()))
            n0 += 1
            item = (self.read, time.perf_counter(), cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            with self.cond:
                while self.block and len(self.queue) == self.queue.maxlen:
                    if self._halt.is_set():
                        return False
                    self.cond.wait(0.1)  # a file read at full speed waits for the scorer
                if len(self.queue) == self.queue.maxlen:
                    self.dropped += 1  # the deque drops the oldest frame
                self.queue.append(item)
                self.read += 1
                self.cond.notify()
        return False

    def get(self, n: int, timeout: float = 0.2) -> list[Item]:
        """Up to n queued frames, oldest first; waits up to ``timeout`` for the first."""
        with self.cond:
            if not self.queue and not self.done:
                self.cond.wait(timeout)
            items = [self.queue.popleft() for _ in range(min(n, len(self.queue)))]
            self.cond.notify_all()
            return items

    def finished(self) -> bool:
        with self.cond:
            return self.done and not self.queue

    def stop(self) -> None:
        self._halt.set()
        with self.cond:
            self.cond.notify_all()
