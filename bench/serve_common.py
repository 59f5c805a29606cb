"""What the serve benches share: a tiny synthetic run, its test video as an .avi, a webhook
receiver, and ``ddlvad serve`` in a subprocess with /proc readings of it."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2

from ddlvad.data.synthetic import SceneSpec, generate

SPEC = SceneSpec(height=48, width=64, train_videos=2, test_videos=1, frames=60, seed=5)
ENV = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def tiny_run(work: Path) -> tuple[Path, Path]:
    """(a tiny trained run, its synthetic test video as an .avi at 25 fps), made once."""
    run, avi = work / "run", work / "cam.avi"
    if not (run / "threshold.json").exists():
        root = generate(work / "data", SPEC)
        cmd = [sys.executable, "-m", "ddlvad", "train", "--data", "synthetic", "--root", str(root),
               "--preset", "tiny", "--out", str(run), "--quiet",
               "--set", f"data.cache_dir={work / 'cache'}", "train.max_steps=20"]  # fmt: skip
        subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
        files = sorted((root / "testing" / "frames" / "01").glob("*.jpg"))
        h, w = cv2.imread(str(files[0])).shape[:2]
        wr = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
        for f in files:
            wr.write(cv2.imread(str(f)))
        wr.release()
        # a threshold the looped video crosses now and then: 2 events a pass (2.4 s at 25 fps)
        cmd = [sys.executable, "-m", "ddlvad", "calibrate", "--run", str(run), str(avi),
               "--alarms-per-hour", "3000", "--min-event", "0", "--cooldown", "0"]  # fmt: skip
        subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return run, avi


class Receiver:
    """Webhook receiver on 127.0.0.1: (arrival time, JSON body) per POST; ``stop`` / ``start``
    take it down and back up on the same port."""

    def __init__(self, port: int, up: bool = True) -> None:
        self.port, self.got, self.server = port, [], None
        if up:
            self.start()

    def start(self) -> None:
        got = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                got.append((time.time(), json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """``ddlvad serve ARGS --port 0`` in a subprocess; ``url`` once it listens."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ddlvad", "serve", *args, "--port", "0"],
            stdout=self.log, stderr=subprocess.STDOUT, env=ENV,
        )  # fmt: skip
        t0, self.url = time.monotonic(), ""
        while not self.url:
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", log.read_text())
            self.url = m.group(1) if m else ""
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError(f"serve did not start; see {log}")
            time.sleep(0.1)

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "api/health", timeout=10) as r:
            return json.loads(r.read())

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.terminate()
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc, time.monotonic() - t0
