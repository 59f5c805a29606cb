"""``ddlvad demo``: generate a synthetic scene, train DDL on it, test it, print the AUC and
the alerts."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "synthetic scene end to end: generate, train, test, alerts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--epochs", type=int, default=0, help="override the demo preset's epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ddlvad.experiments.demo import run_demo

    t0 = time.perf_counter()
    res = run_demo(Path(args.out), epochs=args.epochs, progress=not args.quiet)
    print(
        f"demo: frame AUC micro {100 * res['frame_auc_micro']:.2f} on the synthetic test split "
        f"({res['frames']} frames, {res['anomalous_frames']} anomalous), final sigma "
        f"{res['sigma']:.3f}, {time.perf_counter() - t0:.0f} s"
    )
    ranges = "; ".join(
        f"{name}: frames {', '.join(f'{a}-{b}' for a, b in items)}"
        for name, items in res["alerts"].items()
        if items
    )
    print(
        f"demo: alerts on {res['events_alerted']} of the {res['events']} anomalous events and "
        f"{res['false_alerts']} false alerts ({ranges or 'no alert'})"
    )
    print(f"run directory: {res['run']}")
    data = Path(args.out) / "data" / "testing" / "frames"
    print(f"next: ddlvad predict --run {args.out}/run {data} --fps 25 --overlay")
    return 0
