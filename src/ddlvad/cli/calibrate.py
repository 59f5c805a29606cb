"""``ddlvad calibrate --run DIR``: (re)write a trained run's alert threshold, threshold.json.

Training calibrates every run; this re-calibrates one, e.g. under another quantile or after
``score.*`` changed. Also ``python -m ddlvad.calibrate --run DIR`` (``main``).
"""

from __future__ import annotations

import argparse
import json

HELP = "re-calibrate a trained run's alert threshold (threshold.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--quantile", type=float, help="override calib.quantile")


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run

    result = Run(args.run).calibrate(quantile=args.quantile, progress=True)
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
