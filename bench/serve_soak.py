"""Soak bench for ``ddlvad serve``: a looped file at full speed for N frames; resident memory
and open file descriptors of the process over time must stay flat after warm-up.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/serve_soak.py [--frames 100000] [--work DIR]

A tiny synthetic run (trained once into ``--work``, its threshold calibrated for about 2
events per pass of the video) watches its own test video, looped and read as fast as it is
scored (``--loop --full-speed``; alerts at most every 5 s by the cooldown), so alerts,
snapshots and clips are written along the way, while one client holds the event stream
open as the page does. Every ``--every`` seconds it samples frames scored (from
/api/health), VmRSS and the number of open fds (from /proc); at the end it sends SIGTERM.
Prints the samples, then RSS and fd ranges after warm-up (the first ``--warmup`` of the
frames) and the verdict: RSS within 50 MB, fds within 5.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from serve_common import Serve, tiny_run


def hold_event_stream(url: str, stop: threading.Event) -> None:
    """Read the page's event stream until ``stop`` (as an open dashboard does)."""
    try:
        with urllib.request.urlopen(url + "api/events", timeout=30) as r:
            while not stop.is_set() and r.readline():
                pass
    except OSError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=0.1, help="share of frames to warm up")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="stop early after this")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ddlvad-soak")
    args = ap.parse_args()
    run, avi = tiny_run(args.work)
    out = args.work / "out"
    rule = ["--min-event", "0", "--cooldown", "5"]
    cmd = [f"cam={avi}", "--run", str(run), "--out", str(out), "--loop", "--full-speed", *rule]
    sv = Serve([*cmd, "--quiet"], args.work / "serve.log")
    stop = threading.Event()
    threading.Thread(target=hold_event_stream, args=(sv.url, stop), daemon=True).start()
    t0, rows = time.monotonic(), []
    print(f"{'t_s':>7} {'frames':>8} {'fps':>7} {'rss_mb':>8} {'fds':>5} {'alerts':>6}")
    while True:
        h = sv.health()["cameras"][0]
        rows.append((time.monotonic() - t0, h["frames_scored"], sv.rss_mb(), sv.fds()))
        t, n, rss, fds = rows[-1]
        fps = (n - rows[-2][1]) / (t - rows[-2][0]) if len(rows) > 1 else 0.0
        print(f"{t:7.0f} {n:8d} {fps:7.1f} {rss:8.1f} {fds:5d} {h['alerts']:6d}", flush=True)
        if n >= args.frames or t > 60 * args.max_minutes:
            break
        time.sleep(args.every)
    stop.set()
    rc, secs = sv.stop()
    warm = [r for r in rows if r[1] >= args.warmup * rows[-1][1]]
    rss = [r[2] for r in warm]
    fds = [r[3] for r in warm]
    n, t = rows[-1][1], rows[-1][0]
    print(f"\nframes scored {n} in {t:.0f} s ({n / t:.1f} fps); SIGTERM: exit {rc} in {secs:.2f} s")
    print(f"after warm-up ({len(warm)} samples from frame {warm[0][1]}):")
    print(f"  RSS {min(rss):.1f}-{max(rss):.1f} MB (range {max(rss) - min(rss):.1f} MB)")
    print(f"  open fds {min(fds)}-{max(fds)} (range {max(fds) - min(fds)})")
    alerts = (
        (out / "alerts.jsonl").read_text().splitlines() if (out / "alerts.jsonl").exists() else []
    )
    print(f"  alerts written {len(alerts)}")
    flat = max(rss) - min(rss) <= 50 and max(fds) - min(fds) <= 5
    reached = n >= args.frames
    print(f"verdict: {'FLAT' if flat else 'NOT FLAT'}; "
          f"{'reached' if reached else 'did NOT reach'} {args.frames} frames")  # fmt: skip
    return 0 if flat and rc == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
