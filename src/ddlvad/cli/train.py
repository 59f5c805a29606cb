"""``ddlvad train``: train a model into a run directory (``--nproc N``: DDP under torchrun)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from ddlvad.cli.common import add_data, build_config
from ddlvad.config import RESUME_KEYS, Config, config_changes
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
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train N seeds (train.seed, +1, ...) one after another under OUT/seeds/, check "
        "each without labels (as ddlvad check) and keep the healthiest at OUT",
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


def _resume_config(args: argparse.Namespace, preset: Config, run_dir: Path) -> Config:
    """The run's own config with the command line's --root/--data/--scene/--set; ValueError
    when an explicit --preset differs from it (a resume keeps the run's config, and takes
    only ``RESUME_KEYS`` from --set)."""
    cfg = build_config(args, load_run_config(run_dir))
    changed = config_changes(cfg, preset, ignore=RESUME_KEYS)  # those come from --set
    if args.preset and changed:
        raise ValueError(
            f"{run_dir / CONFIG}: --resume continues the run under this config, and "
            f"--preset {args.preset} changes {', '.join(changed)}; leave --preset out to "
            f"resume, or start a new run (another --out, or --overwrite)"
        )
    return cfg


def _stop_on_sigterm(signum: int, frame: object) -> None:
    from ddlvad.train.stops import Terminated

    raise Terminated()


def run(args: argparse.Namespace) -> int:
    if args.nproc < 1:
        raise ValueError(f"--nproc {args.nproc}: expected a number of processes >= 1")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: pass one")
    if args.seeds < 1 or (args.seeds > 1 and args.nproc > 1):
        raise ValueError(f"--seeds {args.seeds}: expected N >= 1 (and one process: no --nproc)")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ddlvad.train.distributed import launch

        return launch(args.nproc, _strip_nproc(args.argv))
    from ddlvad.api import Run

    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # one line and --resume's step, as SIGINT
    cfg = build_config(args)
    if not cfg.data.root:
        raise SystemExit("ddlvad train: --root is required")
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    if args.resume and (run_dir / CONFIG).exists():
        cfg = _resume_config(args, cfg, run_dir)
    if cfg.data.scene == "all" and args.seeds > 1:
        raise ValueError("--seeds picks among runs of one camera; --scene all trains several")
    if cfg.data.scene == "all":
        from ddlvad.experiments.scenes import train_scenes

        out = train_scenes(
            cfg, run_dir, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
        )
        print(json.dumps({"runs": str(run_dir), "scenes": list(out)}, indent=2))
        return 0
    if args.seeds > 1:
        from ddlvad.experiments.seeds import train_seeds

        summary = train_seeds(
            cfg, run_dir, args.seeds, resume=args.resume, overwrite=args.overwrite,
            progress=not args.quiet,
        )  # fmt: skip
        print(json.dumps({"run": str(run_dir), **summary}, indent=2))
        return 0
    summary = Run(run_dir).train(
        cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    if summary.get("nothing_to_do"):
        print(f"ddlvad train: {summary['nothing_to_do']}", file=sys.stderr)
    if summary.get("finished"):
        steps = ", ".join(summary["finished"])
        print(
            f"ddlvad train: {run_dir}: training was done; ran its end steps {steps}",
            file=sys.stderr,
        )
    print(json.dumps({"run": str(run_dir), **summary}, indent=2))
    return 0
