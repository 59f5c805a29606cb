"""``ddlvad calibrate --run DIR``: (re)write a trained run's alert threshold, threshold.json.

Training calibrates every run; this re-calibrates one, e.g. under another quantile or after
``score.*`` changed, or for a target number of false alarms per hour of normal footage
(``--alarms-per-hour X [FOOTAGE...]``, under serve's alert rule: ``ddlvad.serve.calibrate``).
Also ``python -m ddlvad.calibrate --run DIR`` (``main``).
"""

from __future__ import annotations

import argparse
import json

HELP = "re-calibrate a trained run's alert threshold (threshold.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ddlvad.cli.common import add_rule_arguments, rate

    p.add_argument("--run", required=True, help="run directory")
    p.add_argument(
        "footage",
        nargs="*",
        help="--alarms-per-hour: normal videos / frame folders "
        "(default: the run's own calibration frames, with --fps)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quantile", type=float, help="override calib.quantile")
    g.add_argument(
        "--alarms-per-hour",
        type=rate,
        metavar="X",
        help="the lowest threshold at which serve's alert rule raises at most X alarms per "
        "hour of the normal footage",
    )
    p.add_argument("--fps", type=rate, default=0.0, help="frame rate of frame folders")
    add_rule_arguments(p)  # as serve's


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run

    if args.alarms_per_hour is None:
        if args.footage:
            raise ValueError("FOOTAGE is for --alarms-per-hour; --quantile uses the run's data")
        result = Run(args.run).calibrate(quantile=args.quantile, progress=True)
    else:
        result = Run(args.run).calibrate_rate(
            args.alarms_per_hour,
            args.footage,
            fps=args.fps,
            min_event_s=args.min_event,
            cooldown_s=args.cooldown,
            max_event_s=args.max_event,
        )
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ddlvad.calibrate --run DIR``: (re)write threshold.json for a trained run."""
    from ddlvad.errors import run_entry

    prog = "python -m ddlvad.calibrate"
    ap = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    add_arguments(ap)
    args = ap.parse_args(argv)
    return run_entry(prog, lambda: run(args))
