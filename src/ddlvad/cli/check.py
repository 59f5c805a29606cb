"""``ddlvad check``: a trained model's health from normal footage only (no labels)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "a model's health from normal footage only: healthy, doubtful or unhealthy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ddlvad.cli.common import add_run_or_model

    add_run_or_model(p, out=False)
    p.add_argument("--root", help="dataset root (default: the run's data.root)")
    p.add_argument("--json", action="store_true", help="print the record as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run
    from ddlvad.scoring.threads import govern

    govern()
    if args.model:
        from ddlvad import zoo

        run_dir, write = zoo.resolve(args.model), False  # the package is never written
    else:
        run_dir, write = Path(args.run), True
    record = Run(run_dir).check(root=args.root, write=write, progress=not args.quiet)
    if args.json:
        print(json.dumps(record))
        return 0
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in record["kinds"].items())
    print(f"health {record['health']:.3f}: {record['verdict']}: {record['advice']}")
    print(
        f"  synthetic anomalies (AUC each): {kinds}; normal-score drift between videos "
        f"{record['drift']:.2f}; {record['frames']} frames of {record['videos']} videos in "
        f"{record['seconds']} s" + (f"; wrote {run_dir / 'health.json'}" if write else "")
    )
    return 0
