"""The ``ddlvad`` command: one verb per pipeline stage, a thin wrapper over the library.

Each verb is a module of this package with ``HELP`` (its line in ``ddlvad --help``),
``add_arguments(parser)`` and ``run(args) -> int``; ``VERBS`` lists them in help order.
Verb modules import nothing heavy at import time, so building the parser (``ddlvad --help``,
``ddlvad VERB --help``) imports no torch: ``run`` imports what the verb needs.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from ddlvad import __version__
from ddlvad.cli import (
    ablate,
    calibrate,
    check,
    demo,
    export,
    info,
    models,
    predict,
    report,
    serve,
    test,
    tracks,
    train,
)

VERBS: dict[str, ModuleType] = {
    "train": train,
    "test": test,
    "calibrate": calibrate,
    "check": check,
    "info": info,
    "tracks": tracks,
    "demo": demo,
    "report": report,
    "predict": predict,
    "serve": serve,
    "export": export,
    "ablate": ablate,
    "models": models,
}


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ddlvad",
        description="Video anomaly detection by Dynamic Distinction Learning: train a model "
        "on normal footage of one camera, then score new footage of it.",
        epilog="Start with 'ddlvad demo'. 'ddlvad VERB --help' lists a verb's options.",
    )
    ap.add_argument("--version", action="version", version=f"ddlvad {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB", title="verbs")
    for name, verb in VERBS.items():
        p = sub.add_parser(name, help=verb.HELP)
        verb.add_arguments(p)
        p.set_defaults(fn=verb.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from ddlvad.errors import run_entry
    from ddlvad.scoring.threads import prepare_openmp

    prepare_openmp()  # before any verb imports torch

    return run_entry(f"ddlvad {args.verb}", lambda: args.fn(args))
