"""The ``ddlvad serve`` process: camera workers, hooks, the web server, signals, summary.

The web server (uvicorn) runs on a thread; the main thread waits for SIGTERM / SIGINT (or
for every source to end for good: files without ``--loop``), then stops the cameras (each
scores what it read, decides its open event and writes its alert), gives the hooks what is
left of ``STOP_S`` to deliver, stops the web server and writes ``OUT/summary.json``.
"""

from __future__ import annotations

import ipaddress
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from ddlvad.infer.detector import Detector
from ddlvad.io import atomic_write_json, json_safe
from ddlvad.serve.alerts import AlertLog, AlertWriter, iso
from ddlvad.serve.app import create_app
from ddlvad.serve.camera import Camera, CameraSpec
from ddlvad.serve.hooks import ExecHook, Hook, Webhook
from ddlvad.serve.rules import RuleConfig
from ddlvad.serve.site import Site

STOP_S = 4.0  # a stop signal to exit: every alert written within this (the hooks' drain too)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """uvicorn on a thread; ``start`` returns the bound port once it listens."""

    def __init__(self, app, host: str, port: int) -> None:
        cfg = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="web")
        self.host = host

    def start(self, timeout: float = 10.0) -> int:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > timeout:
                raise OSError(f"cannot listen on {self.host}: address in use or not available")
            time.sleep(0.02)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=2.0)


def make_hooks(webhooks: list[str], exec_cmd: str | None, log) -> list[Hook]:
    hooks: list[Hook] = [Webhook(url, log=log) for url in webhooks]
    if exec_cmd:
        hooks.append(ExecHook(exec_cmd, log=log))
    return hooks


def serve(
    specs: list[CameraSpec],
    det: Detector,
    rule: RuleConfig,
    out: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    webhooks: list[str] | None = None,
    exec_cmd: str | None = None,
    masks: dict[str, np.ndarray | None] | None = None,
    camera_options: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Watch ``specs`` until SIGTERM / SIGINT or every source ended; returns 0."""
    if not is_loopback(host):
        token = token or secrets.token_urlsafe(16)
    out.mkdir(parents=True, exist_ok=True)
    alerts = AlertLog(out)
    site = Site(out, alerts, make_hooks(webhooks or [], exec_cmd, log), token or "")
    writer = AlertWriter(out, alerts, site.on_alert, warn=log)
    for spec in specs:
        site.cameras[spec.name] = Camera(
            spec, det, rule, out, writer,
            mask=(masks or {}).get(spec.name), log=log, **(camera_options or {}),
        )  # fmt: skip
    stop, why = threading.Event(), {"reason": "every source ended"}

    def on_signal(signum, _frame) -> None:
        why["reason"] = signal.Signals(signum).name
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    web = WebServer(create_app(site), host, port)
    try:
        bound = web.start()
        url = f"http://{host}:{bound}/" + (f"?token={token}" if token else "")
        note = "local only" if not token else f"bound to {host}: every request needs the token"
        log(f"ddlvad serve: dashboard at {url} ({note}); alerts to {out / 'alerts.jsonl'}")
        writer.start()
        for hook in site.hooks:
            hook.start()
        for cam in site.cameras.values():
            cam.start()
        while not stop.wait(0.25):
            if not any(c.is_alive() for c in site.cameras.values()):
                break
        _shutdown(site, web, writer, why["reason"], log)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    _write_summary(site, writer, rule, why["reason"], info or {})
    return 0


def _shutdown(site: Site, web: WebServer, writer: AlertWriter, reason: str, log) -> None:
    """The web server and the event streams are told to stop first (they wind down
    meanwhile); then the cameras, each scoring what it read and deciding its open event;
    then every queued alert is written; the hooks get what is left of ``STOP_S``."""
    t0 = time.monotonic()
    log(f"ddlvad serve: stopping ({reason}): finishing alerts")
    site.stopping.set()
    web.server.should_exit = True
    for cam in site.cameras.values():
        cam.stop()
    for cam in site.cameras.values():
        cam.join(timeout=30.0)  # bounded work once stopped: the queued frames and one flush
        if cam.is_alive():
            log(f"[{cam.spec.name}] did not stop within 30 s; its open event is not written")
    writer.close(clip_deadline_s=max(STOP_S - 2.0 - (time.monotonic() - t0), 0.0))
    left = max(STOP_S - (time.monotonic() - t0), 0.3)
    for hook in site.hooks:
        hook.close(drain_s=left / max(len(site.hooks), 1))
    web.stop()


def _write_summary(
    site: Site, writer: AlertWriter, rule: RuleConfig, reason: str, info: dict[str, Any]
) -> None:
    summary = {
        **info,
        "started": iso(site.started),
        "ended": iso(time.time()),
        "seconds": round(time.time() - site.started, 1),
        "stopped_by": reason,
        "rule": rule.record(),
        "alerts_this_run": site.alert_seq,
        "alerts_total": site.alerts.next_id - 1,
        "clips_skipped": writer.skipped,
        "cameras": [c.snapshot() for c in site.cameras.values()],
        "hooks": site.hook_stats(),
    }
    atomic_write_json(site.out / "summary.json", json_safe(summary))
