"""``ddlvad report --run DIR``: plots and a self-contained report.html (``ddlvad.report``);
``--ablation DIR``: the same for an ablation grid (``ddlvad.experiments.grid_report``)."""

from __future__ import annotations

import argparse

from ddlvad.cli.common import add_run_or_model, build_config, resolve_run

HELP = "HTML report and plots for a run or an ablation grid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = add_run_or_model(p, out=True)
    g.add_argument(
        "--ablation",
        metavar="DIR",
        help="an ablation grid folder (ablation.json): grid with spread, every run, overlaid "
        "sigma trajectories",
    )
    p.add_argument(
        "--root",
        help="the labelled test data, when the run has no test results yet and its config "
        "names no dataset (a --model copy)",
    )
    p.add_argument("--data", default="auto", help="dataset name or layout of --root (ped2, ...)")
    p.add_argument("--compare", metavar="OTHER_RUN", help="a run to compare with (e.g. no DDL)")
    p.add_argument(
        "--frames", help="test frames for the compare panel, VIDEO:FRAME,... (default: auto)"
    )
    p.add_argument("--clips", type=int, default=3, help="training clips in the Figure 4 panel")
    p.add_argument(
        "--max-videos", type=int, default=0, help="timelines for the first N videos (0 = all)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.ablation:
        from ddlvad.experiments.grid_report import build_grid_report

        given = (("--compare", args.compare), ("--frames", args.frames), ("--root", args.root))
        ignored = [f for f, v in given if v]
        if ignored:
            raise ValueError(
                f"{args.ablation}: {' and '.join(ignored)} "
                f"{'are' if len(ignored) > 1 else 'is'} for a single run's report "
                f"(--run/--model), not for --ablation"
            )

        print(f"wrote {build_grid_report(args.ablation)}")
        return 0
    from ddlvad.api import Run
    from ddlvad.report.page import parse_frames

    resolve_run(args, "report")
    run = Run(args.run)
    cfg = build_config(args, run.config()) if args.root else None
    out = run.report(
        cfg,
        compare=args.compare,
        frames=parse_frames(args.frames) if args.frames else None,
        clips=args.clips,
        max_videos=args.max_videos,
        progress=not args.quiet,
    )
    print(f"wrote {out} and {out.parent / 'plots'}/")
    return 0
