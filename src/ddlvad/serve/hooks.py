"""Hooks that carry an alert beyond the files: a webhook POST and a command per alert.

Each hook has its own thread and an unbounded FIFO queue, so a slow or dead receiver never
blocks detection. The webhook POSTs each record's JSON (``Content-Type: application/json``)
and retries the head of the queue with exponential backoff (0.5 s doubling to 30 s) until
the receiver answers 2xx: alerts queued while it is down are delivered late, in order, none
lost. At shutdown it keeps trying for ``drain_s`` seconds; what is still queued then is
counted as ``pending`` in summary.json (every alert is in alerts.jsonl regardless).

The command runs through the shell with the record's JSON on stdin and in the environment
variable ``DDLVAD_ALERT``; a command running longer than ``timeout_s`` is killed.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ddlvad.infer.capture import Backoff


class Hook(threading.Thread):
    """A queue of alert records worked off one by one on a thread (``deliver``)."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.delivered = self.failures = 0
        self.last_error = ""
        self.stopping = threading.Event()
        self.deadline = float("inf")
        self._inflight = 0

    def post(self, record: dict[str, Any]) -> None:
        """Queue one record; returns at once."""
        self.queue.put(record)

    def run(self) -> None:
        while True:
            record = self.queue.get()
            if record is None:
                return
            if not self.deliver(record):
                return  # shutdown deadline passed with this record undelivered
            self.delivered += 1

    def deliver(self, record: dict[str, Any]) -> bool:
        raise NotImplementedError

    def close(self, drain_s: float) -> None:
        """Stop after what is queued, giving up ``drain_s`` seconds from now."""
        self.deadline = time.monotonic() + drain_s
        self.stopping.set()
        self.queue.put(None)
        self.join(timeout=drain_s + 1.0)

    @property
    def pending(self) -> int:
        """Records queued and not delivered (the stop marker not counted)."""
        return sum(1 for r in list(self.queue.queue) if r is not None) + self._inflight

    def stats(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "pending": self.pending,
            "failed_attempts": self.failures,
            "last_error": self.last_error,
        }


class Webhook(Hook):
    """POST each record as JSON to ``url``, retrying with backoff until it is accepted."""

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, backoff: Backoff | None = None, log=print
    ) -> None:
        super().__init__(log)
        self.url, self.timeout_s = url, timeout_s
        self.backoff = backoff or Backoff(0.5, 30.0)

    def deliver(self, record: dict[str, Any]) -> bool:
        data = json.dumps(record).encode()
        self._inflight = 1
        while True:
            try:
                req = urllib.request.Request(
                    self.url, data, {"Content-Type": "application/json"}, method="POST"
                )
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    r.read()
                self.backoff.reset()
                self._inflight = 0
                return True
            except (urllib.error.URLError, OSError, ValueError) as e:
                self.failures += 1
                self.last_error = str(getattr(e, "reason", e))
            delay = self.backoff.next()
            if self.failures == 1 or self.failures % 10 == 0:
                self.log(f"webhook {self.url}: {self.last_error}; retrying (in {delay:.1f} s)")
            left = self.deadline - time.monotonic()
            if left <= 0:
                return False
            if self.stopping.is_set():  # shutting down: keep trying until the deadline
                time.sleep(min(0.25, left))
            else:
                self.stopping.wait(min(delay, left))


class ExecHook(Hook):
    """Run ``cmd`` (through the shell) once per record, its JSON on stdin and in
    ``DDLVAD_ALERT``."""

    def __init__(self, cmd: str, *, timeout_s: float = 60.0, log=print) -> None:
        super().__init__(log)
        self.cmd, self.timeout_s = cmd, timeout_s

    def deliver(self, record: dict[str, Any]) -> bool:
        text = json.dumps(record)
        try:
            done = subprocess.run(
                self.cmd,
                shell=True,
                input=text,
                text=True,
                env={**os.environ, "DDLVAD_ALERT": text},
                timeout=min(self.timeout_s, max(self.deadline - time.monotonic(), 0.1)),
                capture_output=True,
            )
            if done.returncode:
                self.failures += 1
                self.last_error = f"exit {done.returncode}: {done.stderr.strip()[-200:]}"
                self.log(f"--exec {self.cmd!r}: {self.last_error}")
        except (subprocess.TimeoutExpired, OSError) as e:
            self.failures += 1
            self.last_error = str(e)
            self.log(f"--exec {self.cmd!r}: {e}")
        return True
