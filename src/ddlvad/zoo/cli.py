"""``--model NAME`` for the verbs that take ``--run``, and the ``models`` verb.

Imports nothing heavy: the parser is built for ``--help`` without torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddlvad import zoo

# Verbs that write into the run directory: --model gives them a copy of the entry to write in.
WRITING_VERBS = ("test", "report", "export")


def add_run_or_model(p: argparse.ArgumentParser, *, out: bool) -> None:
    """--run DIR or --model NAME (one of them); ``out``: also add --out for the run copy."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="run directory (config.yaml + checkpoints)")
    g.add_argument(
        "--model",
        metavar="NAME",
        help="a shipped pretrained model instead of a run ('ddlvad models' lists them)",
    )
    if out:
        p.add_argument(
            "--out",
            help="with --model: folder that receives a copy of the model and the outputs "
            "(default ./ddlvad-NAME); the installed package is never written",
        )


def resolve_run(args: argparse.Namespace, verb: str) -> None:
    """Point ``args.run`` at a run folder when ``--model`` was given (checking sha256s).

    Writing verbs get a copy at ``--out``; predict reads the verified entry in place and
    writes its outputs under ``./ddlvad-NAME/predict/`` unless ``--out`` says otherwise."""
    name = getattr(args, "model", None)
    if not name:
        return
    if verb in WRITING_VERBS:
        args.run = str(zoo.materialize(name, args.out or zoo.default_run_dir(name)))
        return
    args.run = str(zoo.resolve(name))
    if not getattr(args, "out", None):
        stem = Path(str(args.input)).name or "input"
        args.out = str(zoo.default_run_dir(name) / "predict" / stem)


def add_models_verb(sub) -> None:
    p = sub.add_parser("models", help="list the shipped pretrained models (--model NAME)")
    p.set_defaults(fn=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    found = zoo.names()
    for name in found:
        print(zoo.card_line(name))
    if not found:
        print("no shipped models in this build")
    else:
        print(f"(model cards: {zoo.ZOO_DIR}/NAME/MODEL_CARD.md)")
    return 0
