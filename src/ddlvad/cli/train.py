"""``ddlvad train``: train a model into a run directory (``--nproc N``: DDP under torchrun)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ddlvad.cli.common import add_data, build_config
from ddlvad.rundir import CONFIG, load_run_config

HELP = "train a model into a run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data(p)
    p.add_argument("--out", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (only once the new config and data validated)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes: relaunch under torchrun with DDP (gloo on CPU, nccl on GPU)",
    )


def _strip_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def run(args: argparse.Namespace) -> int:
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ddlvad.train.distributed import launch

        return launch(args.nproc, _strip_nproc(args.argv))
    from ddlvad.api import Run

    cfg = build_config(args)
    if not cfg.data.root:
        raise SystemExit("ddlvad train: --root is required")
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    if args.resume and (run_dir / CONFIG).exists():
        cfg = build_config(args, load_run_config(run_dir))
    if args.resume and args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: pass one")
    if cfg.data.scene == "all":
        from ddlvad.experiments.scenes import train_scenes

        out = train_scenes(
            cfg, run_dir, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
        )
        print(json.dumps({"runs": str(run_dir), "scenes": list(out)}, indent=2))
        return 0
    summary = Run(run_dir).train(
        cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    if summary.get("nothing_to_do"):
        print(f"ddlvad train: {summary['nothing_to_do']}", file=sys.stderr)
    print(json.dumps({"run": str(run_dir), **summary}, indent=2))
    return 0
