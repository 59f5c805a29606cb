"""What the web app reads: the cameras, the alert log, the hooks, recent alerts in memory."""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ddlvad.serve.alerts import AlertLog, iso
from ddlvad.serve.camera import Camera
from ddlvad.serve.hooks import Hook


class Site:
    """The running site: ``cameras`` by name, ``alerts`` (alerts.jsonl), ``hooks``."""

    def __init__(self, out: Path, alerts: AlertLog, hooks: list[Hook], token: str = "") -> None:
        self.out, self.alerts, self.hooks, self.token = out, alerts, hooks, token
        self.cameras: dict[str, Camera] = {}
        self.started = time.time()
        self.stopping = threading.Event()
        self.recent: deque[tuple[int, dict[str, Any]]] = deque(maxlen=100)
        self.alert_seq = 0
        self.lock = threading.Lock()

    def on_alert(self, record: dict[str, Any]) -> None:
        """Called by a camera once its alert is on disk: remember it, hand it to the hooks."""
        with self.lock:
            self.alert_seq += 1
            self.recent.append((self.alert_seq, record))
        for hook in self.hooks:
            hook.post(record)

    def alerts_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """(latest seq, the alerts of this process with seq > ``seq``, oldest first)."""
        with self.lock:
            return self.alert_seq, [r for q, r in self.recent if q > seq]

    def hook_stats(self) -> dict[str, Any]:
        return {type(h).__name__.lower(): h.stats() for h in self.hooks}

    def health(self) -> dict[str, Any]:
        cams = [c.snapshot() for c in self.cameras.values()]
        ok = all(c["state"] == "live" for c in cams)
        return {
            "status": "ok" if ok else "degraded",
            "started": iso(self.started),
            "uptime_s": round(time.time() - self.started, 1),
            "cameras": cams,
            "alerts": self.alert_seq,
            "hooks": self.hook_stats(),
        }
