"""``ddlvad test``: score a labelled test split with a run; report AUCs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddlvad.cli.common import add_data, add_run_or_model, build_config, resolve_run
from ddlvad.config import Config
from ddlvad.rundir import METRICS, PROTOCOLS, load_run_config, scene_dirs
from ddlvad.scoring.protocol import ScoreProtocol

HELP = "score a labelled test split; report AUCs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_or_model(p, out=True)
    add_data(p, preset=False)
    g = p.add_argument_group("scoring protocol (default: the run's score.* config)")
    bool_flag = argparse.BooleanOptionalAction
    g.add_argument("--patch", type=int, help="patch size of the patch-max frame score")
    g.add_argument("--shifted", action=bool_flag, help="add the patch/2-shifted grid")
    g.add_argument("--median", type=int, help="median filter window, 0 = off (paper: 17)")
    g.add_argument("--normalize", action=bool_flag, help="per-video min-max of final scores")
    g.add_argument(
        "--edge",
        choices=["clamp", "copy"],
        help="edge frames: clamp = repeat the nearest frame in the clip; "
        "copy = copy the nearest full-window score",
    )
    g.add_argument(
        "--gain",
        type=int,
        metavar="N",
        help="calibrate each video's brightness to the training footage's, from its last N "
        "frames (causal; 0 = off)",
    )
    g.add_argument(
        "--stride",
        type=int,
        metavar="K",
        help="the network scores every K-th frame; the frames in between take the linear mix "
        "of the two scores (1 = every frame)",
    )
    g.add_argument(
        "--power",
        type=int,
        choices=[1, 2, 3, 4],
        help="error map = Euclidean distance to this power (1: the paper; 2: squared error)",
    )
    g.add_argument(
        "--pixel-stride", type=int, default=2, help="pixel AUC: every Nth row/column (1 = all)"
    )
    g.add_argument(
        "--protocols",
        action="store_true",
        help="one reconstruction pass, then micro/macro AUC under every patch (4-32), grid and "
        "median (0-33) side by side; writes RUN/protocols.json (not scores.csv)",
    )


def scoring(args: argparse.Namespace, run: str | Path) -> tuple[Config, ScoreProtocol]:
    """The config (the run's, then --root/--data/--scene/--set) and the protocol (the
    config's, then the protocol flags, which win over --set) that ``run`` is tested with:
    the same for a single run and for each run of a per-scene folder."""
    cfg = build_config(args, load_run_config(run))
    flags = {k: getattr(args, k, None) for k in ScoreProtocol.names()}
    return cfg, ScoreProtocol.from_config(cfg).replace(**flags)


def _test_scenes(args: argparse.Namespace) -> int:
    from ddlvad.experiments.scenes import test_scenes

    doc = test_scenes(Path(args.run), lambda run: scoring(args, run), progress=not args.quiet)
    for scene, m in doc["scenes"].items():
        print(f"scene {scene}: frame AUC micro {100 * m['frame_auc_micro']:.2f}")
    print(
        f"median over {len(doc['scenes'])} scenes: "
        f"{100 * doc['median_frame_auc_micro']:.2f} (wrote {args.run}/scenes.json)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run
    from ddlvad.scoring.threads import govern

    resolve_run(args, "test")
    govern()  # the free cores, following the load
    if scene_dirs(args.run):  # a --scene all folder: one run per scene
        return _test_scenes(args)
    cfg, protocol = scoring(args, args.run)
    run = Run(args.run)
    if args.protocols:
        from ddlvad.scoring.protocols import table_text

        print(table_text(run.compare_protocols(cfg, protocol=protocol, progress=not args.quiet)))
        print(f"wrote {Path(args.run) / PROTOCOLS}")
        return 0
    m = run.test(cfg, protocol=protocol, progress=not args.quiet, pixel_stride=args.pixel_stride)
    s = protocol
    print(
        f"protocol: patch {s.patch}{' + shifted grid' if s.shifted else ''} | "
        f"median {s.median or 'off'} | per-video min-max {'on' if s.normalize else 'off'} | "
        f"edge {s.edge}"
        + (f" | stride {s.stride}" if s.stride > 1 else "")
        + (f" | power {s.power}" if s.power > 1 else "")
    )
    print(
        f"frame AUC micro {100 * m['frame_auc_micro']:.2f} | "
        f"micro (per-video min-max) {100 * m['frame_auc_micro_normalized']:.2f} | "
        f"micro (no normalisation) {100 * m['frame_auc_micro_unnormalized']:.2f} | "
        f"macro {100 * m['frame_auc_macro']:.2f} | EER {m['eer']:.3f} | AP {m['ap']:.3f}"
    )
    if m.get("pixel_auc") is not None:
        print(
            f"pixel AUC {100 * m['pixel_auc']:.2f} ({m['pixel_auc_videos']} masked videos, "
            f"{m['pixel_auc_pixels']} pixels at stride {args.pixel_stride})"
        )
    print(f"wrote {Path(args.run) / METRICS} and scores.csv")
    return 0
