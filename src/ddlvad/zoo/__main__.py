"""``python -m ddlvad.zoo``: pack a run into the zoo, or check fresh metrics against a card."""

from __future__ import annotations

import argparse
import json
import sys

from ddlvad.zoo import ZooError, check_metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ddlvad.zoo", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="make zoo/NAME from a trained and tested run")
    p.add_argument("run")
    p.add_argument("name")
    p.add_argument("--command", required=True, help="the exact training command")
    p.add_argument(
        "--info",
        required=True,
        help="JSON: summary, dataset, dataset_flag, split, preset, seed, notes[, commit, machine]",
    )
    c = sub.add_parser("check", help="fail unless METRICS reproduces NAME's card micro AUC")
    c.add_argument("name")
    c.add_argument("metrics")
    c.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            from ddlvad.zoo.pack import pack

            print(pack(args.run, args.name, command=args.command, info=json.loads(args.info)))
        else:
            print(check_metrics(args.name, args.metrics, args.tol))
    except (ZooError, OSError, KeyError, ValueError) as e:
        print(f"ddlvad.zoo: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
