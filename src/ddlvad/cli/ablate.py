"""``ddlvad ablate``: the paper's models x modes grid with seeds, or ``--sweep FILE`` of
named config overrides (see ``ddlvad.experiments.ablate`` and ``ddlvad.experiments.sweep``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddlvad.cli.common import add_data, build_config
from ddlvad.experiments.ablate import ALL_MODES, MODELS, MODES, parse_shard

HELP = "the paper's models x modes grid, with seeds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data(p)
    p.add_argument("--out", help="grid folder (default runs/ablate_<data>)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per cell")
    p.add_argument("--models", default=",".join(MODELS), help="comma list of unet,c3dsu")
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma list of none,static,dynamic (the paper's) and static95 (SDL at sigma "
        "0.95), dynamic_slow (DDL with l's learning rate / 10)",
    )
    p.add_argument(
        "--sweep",
        metavar="FILE",
        help="instead of the grid: YAML of named overrides (cell: {train.lr: 0.001}) x seeds; "
        "writes sweep.md, sweep.json, sweep.png",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run only every N-th cell from the I-th (0-based), seed-major, e.g. 0/2 and 1/2 "
        "in two processes or on two machines sharing --out; each writes the table of all "
        "finished cells",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        action="extend",
        default=[],
        metavar="DIR|JSON",
        help="also tabulate the cells finished in these grid folders (e.g. shards run on "
        "machines that do not share --out) or recorded in earlier ablation.json files (grid "
        "only); a cell finished under --out is read from there, then folders, then files",
    )
    p.add_argument(
        "--collect-only",
        action="store_true",
        help="train nothing: write the table from the cells finished so far",
    )


def run(args: argparse.Namespace) -> int:
    from ddlvad.experiments.ablate import ablate

    base = build_config(args)
    if not base.data.root:
        raise SystemExit("ddlvad ablate: --root is required")
    models = [m for m in args.models.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in models if m not in MODELS] + [m for m in modes if m not in ALL_MODES]
    if bad:
        raise ValueError(f"unknown models/modes {bad}; models {MODELS}, modes {ALL_MODES}")
    out = Path(args.out) if args.out else Path("runs") / f"ablate_{args.data}"
    for d in args.merge:
        if not Path(d).exists():
            raise FileNotFoundError(f"--merge {d}: no such grid folder or ablation.json")
        if args.sweep and not Path(d).is_dir():
            raise ValueError(f"--merge {d}: with --sweep, only grid folders merge")
    common = {
        "seeds": args.seeds,
        "command": "ddlvad " + " ".join(sys.argv[1:]),
        "progress": not args.quiet,
        "train": not args.collect_only,
        "shard": parse_shard(args.shard) if args.shard else None,
        "merge": [Path(d) for d in args.merge],
    }
    if args.sweep:
        from ddlvad.experiments.sweep import sweep

        doc = sweep(base, args.sweep, out, **common)
        print((out / "sweep.md").read_text())
        print(f"wrote {out / 'sweep.md'}, sweep.json ({len(doc['cells'])} runs)")
        return 0
    doc = ablate(base, out, models=models, modes=modes, dataset=args.data, **common)
    print((out / "ablation.md").read_text())
    print(f"wrote {out / 'ablation.md'} and ablation.json ({len(doc['cells'])} cells)")
    return 0
