"""``ddlvad export --run DIR``: the run's model as ONNX (see ``ddlvad.infer.export``)."""

from __future__ import annotations

import argparse
import json

from ddlvad.cli.common import add_run_or_model, resolve_run

HELP = "export a run's model to ONNX"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_or_model(p, out=True)
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime vs torch comparison"
    )


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run
    from ddlvad.infer.export import TOLERANCE

    resolve_run(args, "export")
    report = Run(args.run).export(check=not args.no_check)
    print(json.dumps(report, indent=2))
    if report.get("match") is False:
        print(f"ddlvad export: onnxruntime differs from torch by more than {TOLERANCE}")
        return 1
    return 0
