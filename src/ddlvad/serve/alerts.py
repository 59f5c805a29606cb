"""Alerts on disk: ``OUT/alerts.jsonl`` (one JSON object a line), ``OUT/snapshots/*.jpg`` and
``OUT/clips/*.webm``.

A record is appended, flushed and fsync'd the moment its alert is decided, after its
snapshot and clip are in place (each written to a temp name, then renamed), so a line never
names a missing file and a kill leaves every line whole. A restart into the same folder
continues the file and its ids. Clips are WebM (VP8), which browsers play.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ddlvad.infer.overlay import quiet_stderr

ALERTS = "alerts.jsonl"
SNAPSHOTS, CLIPS = "snapshots", "clips"
CLIP_CODEC = "VP80"  # WebM VP8: the OpenCV wheels' FFmpeg has libvpx; browsers play it


def iso(t: float) -> str:
    """Unix time -> ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> float:
    """ISO 8601 (with or without zone; without = local time) -> Unix time; ValueError."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.astimezone()).timestamp()


class AlertLog:
    """``alerts.jsonl`` in ``out``: ids go on from the records already there."""

    def __init__(self, out: Path) -> None:
        self.path = out / ALERTS
        self.lock = threading.Lock()
        out.mkdir(parents=True, exist_ok=True)
        self.next_id = 1 + max((r.get("id", 0) for r in self.read()), default=0)
        self._seal()

    def _seal(self) -> None:
        """A last line cut by a crash mid-write is ended, so the next record starts clean."""
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id - 1

    def append(self, record: dict[str, Any]) -> None:
        """One line, flushed and fsync'd before returning."""
        line = json.dumps(record, sort_keys=False) + "\n"
        with self.lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read(self, since: float | None = None) -> list[dict[str, Any]]:
        """The records (whole lines only), those ending at or after ``since`` (Unix time)."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if since is None or parse_iso(r["end_time"]) >= since:
                    out.append(r)
        return out


def write_snapshot(path: Path, jpeg: bytes) -> None:
    """The JPEG bytes at ``path``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(jpeg)
    os.replace(tmp, path)


def write_clip(path: Path, jpegs: Iterable[bytes], fps: float) -> int:
    """Decode the JPEG frames and write them as a WebM (VP8) clip at ``path``, atomically;
    the number of frames written (0: no file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")  # the suffix picks the container
    writer, n = None, 0
    try:
        for data in jpegs:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if writer is None:
                h, w = img.shape[:2]
                with quiet_stderr():  # FFmpeg's note on the WebM codec tag goes to fd 2
                    writer = cv2.VideoWriter(
                        str(tmp), cv2.VideoWriter_fourcc(*CLIP_CODEC), max(fps, 1.0), (w, h)
                    )
                if not writer.isOpened():
                    raise OSError(f"{path}: OpenCV cannot write WebM ({CLIP_CODEC})")
            writer.write(img)
            n += 1
    finally:
        if writer is not None:
            writer.release()
    if n:
        os.replace(tmp, path)
    elif tmp.exists():
        tmp.unlink()
    return n


class AlertWriter(threading.Thread):
    """Writes decided alerts on its own thread, so detection goes on meanwhile: for each,
    in the order submitted, the snapshot, the clip, the alerts.jsonl line, then
    ``on_alert(record)`` (the hooks, the page).

    Clips are the slow part (WebM encoding), so they are bounded: an alert decided while
    ``max_clips`` clips still wait, or written after the stop deadline (``close``), gets
    no clip (``"clip": null`` and ``"clip_skipped"`` says why); its line is never held up
    or dropped."""

    def __init__(self, out: Path, log: AlertLog, on_alert, warn=print, max_clips: int = 2):
        super().__init__(daemon=True, name="alert-writer")
        self.out, self.log, self.on_alert, self.warn = out, log, on_alert, warn
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.max_clips, self.clips_waiting = max_clips, 0
        self.deadline = float("inf")
        self.skipped = 0

    def submit(
        self, record: dict[str, Any], snapshot: bytes, frames: list[bytes], fps: float
    ) -> int:
        """Queue one alert of ``record["camera"]``; its ``id`` and file names are given
        here, so ids follow the order of the decisions."""
        with self.lock:
            aid = record["id"] = self.log.new_id()
            stem = f"{record['camera']}_{aid:06d}"
            record["snapshot"] = f"{SNAPSHOTS}/{stem}.jpg"
            record["clip"] = f"{CLIPS}/{stem}.webm"
            if self.clips_waiting >= self.max_clips:
                frames = []
                self._no_clip(record, f"{self.clips_waiting} clips were waiting to be written")
            else:
                self.clips_waiting += 1
            self.queue.put((record, snapshot, frames, fps))
        return aid

    def _no_clip(self, record: dict[str, Any], why: str) -> None:
        record["clip"] = record["clip_frames"] = None
        record["clip_skipped"] = why
        self.skipped += 1

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            record, snapshot, frames, fps = item
            try:
                write_snapshot(self.out / record["snapshot"], snapshot)
                if frames and time.monotonic() >= self.deadline:
                    self._no_clip(record, "stopping: past the stop deadline")
                elif frames and not write_clip(self.out / record["clip"], frames, fps):
                    self._no_clip(record, "no frame kept")
            except OSError as e:  # the alert itself must still be recorded
                self.warn(f"alert {record['id']}: {e}")
                self._no_clip(record, str(e))
            finally:
                if frames:
                    with self.lock:
                        self.clips_waiting -= 1
            self.log.append(record)
            self.on_alert(record)

    def close(self, clip_deadline_s: float = float("inf")) -> None:
        """Write every queued alert, then stop; clips only for ``clip_deadline_s`` more."""
        self.deadline = time.monotonic() + clip_deadline_s
        self.queue.put(None)
        self.join()
