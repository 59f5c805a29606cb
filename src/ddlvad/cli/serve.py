"""``ddlvad serve SOURCE... (--run DIR | --model NAME) --out DIR``: watch cameras live, with a
web dashboard, alerts to files and hooks (see ``ddlvad.serve``; needs the ``serve`` extra)."""

from __future__ import annotations

import argparse

from ddlvad.cli.common import add_rule_arguments, add_run_or_model, count, rate, resolve_run
from ddlvad.scoring import ENGINES

HELP = "watch cameras live: web dashboard, alerts to alerts.jsonl, webhook and command hooks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a video file, camera index or rtsp:// / http:// URL, one camera each; "
        "NAME=SOURCE names the camera (default: the file's stem, camN, the URL's host)",
    )
    add_run_or_model(p, out=False)
    p.add_argument("--out", required=True, help="output folder (appended to on restart)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=count, default=8765, help="port (default 8765; 0 = any free)")
    p.add_argument(
        "--token", help="access token when bound beyond loopback (default: a random one)"
    )
    p.add_argument("--loop", action="store_true", help="replay video files as a live camera")
    p.add_argument(
        "--full-speed",
        action="store_true",
        help="read video files as fast as they are scored (default: at their frame rate)",
    )
    p.add_argument("--webhook", action="append", default=[], metavar="URL", help="POST alerts")
    p.add_argument(
        "--exec", dest="exec_cmd", metavar="CMD", help="run CMD per alert (JSON on stdin)"
    )
    p.add_argument("--threshold", type=float, help="alert threshold (default: threshold.json)")
    add_rule_arguments(p)
    p.add_argument("--zones", help="ignore zones: JSON or YAML file of polygons per camera")
    p.add_argument("--clip-seconds", type=rate, default=10.0, help="longest clip kept (10)")
    p.add_argument("--fps", type=rate, default=0.0, help="frame rate of streams (default 25)")
    p.add_argument(
        "--give-up", type=rate, default=0.0, help="stop a source down this long (0: never)"
    )
    p.add_argument("--max-queue", type=count, default=0, help="frames queued before drops")
    p.add_argument("--engine", choices=("auto", *ENGINES), default="auto", help="auto = stream")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto, ...)")
    p.add_argument("--threads", type=count, default=0, help="torch threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no log lines but the startup line")


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    try:
        from ddlvad.serve.server import serve
    except ModuleNotFoundError as e:
        raise ImportError(
            f"the dashboard needs the serve extra ({e.name} is not installed): "
            f"pip install 'ddlvad[serve]'"
        ) from None
    import torch

    from ddlvad.api import Run
    from ddlvad.rundir import check_threshold, pick_device, warn_if_unhealthy
    from ddlvad.serve.setup import camera_specs, masks_for, rule_for

    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    specs = camera_specs(args.sources, loop=args.loop, full_speed=args.full_speed, fps=args.fps)
    resolve_run(args, "serve")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warn_if_unhealthy(args.run)
    run_ = Run(args.run)
    det = run_.detector(
        engine="stream" if args.engine == "auto" else args.engine,
        precision="fp32",
        device=str(pick_device(args.device, "--device")),
        threshold=args.threshold,
    )
    rule = rule_for(det, args)
    masks = masks_for(args.zones, specs, det) if args.zones else {}

    from pathlib import Path

    def log(line: str) -> None:  # --quiet keeps the startup line (the dashboard's address)
        if not args.quiet or line.startswith("ddlvad serve: dashboard"):
            print(line, flush=True)

    rc = serve(
        specs,
        det,
        rule,
        Path(args.out),
        host=args.host,
        port=args.port,
        token=args.token,
        webhooks=args.webhook,
        exec_cmd=args.exec_cmd,
        masks=masks,
        camera_options={
            "clip_s": args.clip_seconds,
            "give_up_s": args.give_up,
            "max_queue": args.max_queue,
        },
        info={"run": str(args.run), "threshold_source": det.threshold_source},
        log=log,
    )
    # Every file is written, closed and fsync'd by now: leave without the interpreter's
    # teardown, where torch alone takes seconds, so a service stop ends within its budget.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
