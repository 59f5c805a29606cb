"""Fault bench for ``ddlvad serve``: the camera's stream cut and restored, the webhook
receiver down then up. Alerts must arrive late with none lost, and detection never stall.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/serve_faults.py [--work DIR]

The camera is an MJPEG-over-HTTP stream at 25 fps (as IP cameras serve), made here from a
tiny synthetic run's test video; serve watches it with threshold 0 and ``--max-event 1``,
so it decides one alert per second. Timeline (seconds after the first scored frame):
0 the webhook receiver is down; ``--receiver-up`` (8) it comes up; ``--cut`` (14) the
stream's server closes its connections and stops listening; ``--restore`` (20) it listens
again; ``--end`` (30) SIGTERM. /api/health is polled every 0.1 s. Prints: frames scored per
phase and the longest gap between scored frames outside the cut; the reconnects and the time
from restore to the next scored frame; alerts in alerts.jsonl against those received (ids
in order, none missing) and the delivery delays of those decided while the receiver was down.
"""

from __future__ import annotations

import argparse
import http.server
import json
import tempfile
import threading
import time
from pathlib import Path

import cv2
from serve_common import Receiver, Serve, free_port, tiny_run


class MjpegCamera:
    """An MJPEG-over-HTTP camera at ``fps``, looping ``avi``'s frames; ``cut`` closes every
    connection and stops listening, ``restore`` listens again on the same port."""

    def __init__(self, avi: Path, fps: float = 25.0) -> None:
        cap, self.jpegs = cv2.VideoCapture(str(avi)), []
        while (got := cap.read())[0]:
            self.jpegs.append(cv2.imencode(".jpg", got[1])[1].tobytes())
        self.fps, self.port, self.live = fps, free_port(), threading.Event()
        self.restore()

    def restore(self) -> None:
        cam = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i, t0 = 0, time.monotonic()
                try:
                    while cam.live.is_set():
                        f = cam.jpegs[i % len(cam.jpegs)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(f)}"
                        self.wfile.write(head.encode() + b"\r\n\r\n" + f + b"\r\n")
                        i += 1
                        time.sleep(max(0.0, t0 + i / cam.fps - time.monotonic()))
                except OSError:
                    pass

            def log_message(self, *args) -> None:
                pass

        self.live.set()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cut(self) -> None:
        self.live.clear()  # open connections end at their next frame
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


stats: dict[str, int] = {}


def poll(sv: Serve, stop: threading.Event, rows: list) -> None:
    while not stop.is_set():
        try:
            c = sv.health()["cameras"][0]
            rows.append((time.time(), c["frames_scored"], c["state"], c["reconnects"]))
            stats.update(read=c["frames_read"], dropped=c["dropped"])
        except OSError:
            pass
        time.sleep(0.1)


def longest_gap(rows: list, lo: float, hi: float) -> float:
    """Longest time between frame-count increases among the samples in [lo, hi]."""
    last_t, gap, last_n = None, 0.0, None
    for t, n, _, _ in rows:
        if not lo <= t <= hi:
            continue
        if last_n is None or n > last_n:
            if last_t is not None:
                gap = max(gap, t - last_t)
            last_t, last_n = t, n
    return gap


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ddlvad-faults")
    ap.add_argument("--receiver-up", type=float, default=8.0)
    ap.add_argument("--cut", type=float, default=14.0)
    ap.add_argument("--restore", type=float, default=20.0)
    ap.add_argument("--end", type=float, default=30.0)
    args = ap.parse_args()
    run, avi = tiny_run(args.work)
    out = args.work / "out"
    if out.exists():
        for f in out.rglob("*"):
            f.unlink() if f.is_file() else None
    cam, rport = MjpegCamera(avi), free_port()
    rx = Receiver(rport, up=False)
    rule = ["--threshold", "0", "--min-event", "0", "--cooldown", "0", "--max-event", "1"]
    sv = Serve([f"cam={cam.url}", "--run", str(run), "--out", str(out), *rule, "--fps", "25",
                "--webhook", f"http://127.0.0.1:{rport}/"], args.work / "serve.log")  # fmt: skip
    rows: list = []
    stop = threading.Event()
    threading.Thread(target=poll, args=(sv, stop, rows), daemon=True).start()
    while not rows or rows[-1][1] == 0:
        time.sleep(0.05)
    t0 = rows[-1][0]
    at = {}
    for name, when, act in (("receiver up", args.receiver_up, rx.start), ("cut", args.cut, cam.cut),
                            ("restore", args.restore, cam.restore)):  # fmt: skip
        time.sleep(max(0.0, t0 + when - time.time()))
        act()
        at[name] = time.time()
    time.sleep(max(0.0, t0 + args.end - time.time()))
    stop.set()
    rc, secs = sv.stop()
    rx.stop()
    cam.cut()
    report(rows, at, t0, out, rx, rc, secs)
    return 0


def report(rows, at, t0, out, rx, rc, secs) -> None:
    def frames_at(t: float) -> int:
        return max([n for tt, n, _, _ in rows if tt <= t] or [0])

    end = rows[-1][0]
    up, cut, restore = at["receiver up"], at["cut"], at["restore"]
    phases = [
        ("receiver down", t0, up),
        ("receiver up", up, cut),
        ("source cut", cut, restore),
        ("restored", restore, end),
    ]
    print(f"{'phase':<14} {'from_s':>6} {'to_s':>6} {'frames':>7} {'fps':>6}")
    for name, a, b in phases:
        n = frames_at(b) - frames_at(a)
        print(f"{name:<14} {a - t0:6.1f} {b - t0:6.1f} {n:7d} {n / (b - a):6.1f}")
    back = next(
        (t for t, n, _, _ in rows if t > at["restore"] and n > frames_at(at["restore"])), None
    )
    gap_out = max(longest_gap(rows, t0, at["cut"]), longest_gap(rows, back or end, end))
    print(f"longest gap between scored frames outside the cut: {gap_out:.2f} s")
    print(f"frames read {stats['read']}, dropped {stats['dropped']} (queue full)")
    print(f"reconnects: {rows[-1][3]}; first scored frame {back - at['restore']:.2f} s after "
          f"restore" if back else "no frame after restore")  # fmt: skip
    records = [json.loads(ln) for ln in (out / "alerts.jsonl").read_text().splitlines()]
    got = {b["id"]: t for t, b in rx.got}
    ids = [r["id"] for r in records]
    print(f"alerts: {len(records)} in alerts.jsonl, {len(rx.got)} received; "
          f"missing {sorted(set(ids) - set(got))}; received in order "
          f"{[b['id'] for _, b in rx.got] == sorted(got)}")  # fmt: skip
    from ddlvad.serve.alerts import parse_iso

    late = [got[r["id"]] - parse_iso(r["end_time"]) for r in records
            if r["id"] in got and parse_iso(r["end_time"]) < at["receiver up"]]  # fmt: skip
    if late:
        print(f"decided while the receiver was down: {len(late)}, delivered "
              f"{min(late):.1f}-{max(late):.1f} s late")  # fmt: skip
    print(f"SIGTERM: exit {rc} in {secs:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
