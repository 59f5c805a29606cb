"""``ddlvad tracks``: object proposals + tracking over the training videos, with overlays."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ddlvad.cli.common import add_data, build_config

HELP = "object proposals + tracking over training videos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data(p)
    p.add_argument("--out", default="tracks_out", help="folder for tracks.json and overlays")
    p.add_argument("--viz", type=int, default=0, help="write N overlay images")


def run(args: argparse.Namespace) -> int:
    from ddlvad.objects.overview import run_tracks

    cfg = build_config(args)
    summary = run_tracks(cfg, Path(args.out), viz=args.viz, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return 0
