"""Helpers the serve tests share: a local HTTP receiver, a serve subprocess."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


class Receiver:
    """A webhook receiver on 127.0.0.1 (``http.server`` on a thread): records each POSTed
    JSON body. ``stop`` / ``start`` take it down and bring it back on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[dict] = []
        self.port = port
        self.server: http.server.HTTPServer | None = None
        self.start()

    def start(self) -> None:
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``ddlvad serve`` in a subprocess; ``url`` once its startup line is printed."""

    def __init__(self, args: list[str], timeout: float = 60.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ddlvad", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        t0 = time.monotonic()
        self.url = ""
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                self.proc.kill()
                raise RuntimeError("serve did not start:\n" + "\n".join(self.lines))
            found = [re.search(r"(http://127\.0\.0\.1:\d+/)", ln) for ln in self.lines]
            self.url = next((m.group(1) for m in found if m), "")
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def get(self, path: str) -> bytes:
        import urllib.request

        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as r:
            return r.read()

    def json(self, path: str):
        return json.loads(self.get(path))

    def wait_for(self, cond, timeout: float = 60.0, what: str = "condition"):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            got = cond()
            if got:
                return got
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(self.lines[-30:]))

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.terminate()
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
