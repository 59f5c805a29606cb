"""The acceptance demo of ``ddlvad serve``, timed: a video looped as a camera, the page in
headless Chromium, a webhook receiver, then SIGTERM.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/serve_demo.py VIDEO (--model NAME | --run DIR)
        [--work DIR] [--timeout 120]

Starts ``ddlvad serve VIDEO --loop --out WORK/out --webhook http://127.0.0.1:Q/`` with a
receiver on Q, opens the page in Debian's chromium (Selenium + chromium-driver) and prints,
in seconds from the start of the process: when it listened, when the page first showed a
live frame and a timeline, when the first alert appeared on the page with its snapshot, and
when its clip reached readyState 4 (HAVE_ENOUGH_DATA) in the browser. Then it checks that
alerts.jsonl holds that alert with its snapshot and clip files, that the receiver got the
same JSON, that /api/health answers, and times SIGTERM to exit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from serve_common import Receiver, Serve, free_port

FRAME = (
    "const i = document.querySelector('img.frame'); return !!(i && i.complete && i.naturalWidth)"
)
POINTS = "const c = document.querySelector('section.camera'); return c ? +(c.dataset.seq||0) : 0"
SNAP = (
    "const i = document.querySelector('.alert-item img.snapshot'); return !!(i && i.naturalWidth)"
)
CLIP = "const v = document.querySelector('.alert-item video.clip'); if (v) v.play(); " \
       "return v ? v.readyState : 0"  # fmt: skip


def browser() -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    flags = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1000"]
    for flag in [*flags, "--autoplay-policy=no-user-gesture-required"]:
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--model")
    g.add_argument("--run")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ddlvad-demo")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    shutil.rmtree(args.work / "out", ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    rport = free_port()
    rx = Receiver(rport)
    model = ["--model", args.model] if args.model else ["--run", args.run]
    t0 = time.monotonic()
    sv = Serve([args.video, *model, "--loop", "--out", str(args.work / "out"),
                "--webhook", f"http://127.0.0.1:{rport}/"], args.work / "serve.log")  # fmt: skip
    seen = {"listening": time.monotonic() - t0}
    drv = browser()
    try:
        drv.get(sv.url)
        checks = {"frame + timeline": lambda: drv.execute_script(FRAME)
                  and drv.execute_script(POINTS) > 1,
                  "alert with snapshot": lambda: drv.execute_script(SNAP),
                  "clip readyState 4": lambda: drv.execute_script(CLIP) == 4}  # fmt: skip
        for name, check in checks.items():
            while not check():
                if time.monotonic() - t0 > args.timeout:
                    raise SystemExit(f"timed out waiting for: {name}; see {args.work}/serve.log")
                time.sleep(0.1)
            seen[name] = time.monotonic() - t0
        drv.save_screenshot(str(args.work / "dashboard.png"))
    finally:
        drv.quit()
    health = sv.health()
    rc, secs = sv.stop()
    out = args.work / "out"
    records = [json.loads(ln) for ln in (out / "alerts.jsonl").read_text().splitlines()]
    first = records[0]
    for name, t in seen.items():
        print(f"{name:<22} {t:6.1f} s after start")
    print(f"/api/health: status {health['status']}, {health['cameras'][0]['fps']} fps, "
          f"latency p95 {health['cameras'][0]['latency_p95_ms']} ms")  # fmt: skip
    print(f"alerts.jsonl: {len(records)} alert(s); first: frames {first['start_frame']}-"
          f"{first['end_frame']}, peak {first['peak_score']:.4f}, threshold "
          f"{first['threshold']:.4f}; snapshot {(out / first['snapshot']).stat().st_size} B, "
          f"clip {(out / first['clip']).stat().st_size} B")  # fmt: skip
    got = [b for _, b in rx.got]
    print(f"receiver: {len(got)} alert(s); the same JSON as alerts.jsonl: {got == records}")
    print(f"SIGTERM: exit {rc} in {secs:.2f} s; screenshot {args.work / 'dashboard.png'}")
    rx.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
