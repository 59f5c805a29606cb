"""The ``ddlvad`` command: one verb per pipeline stage, a thin wrapper over the library.

Building the parser imports no torch: each verb imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ddlvad import __version__
from ddlvad.config import Config, apply_overrides, load_preset, parse_set
from ddlvad.rundir import load_run_config
from ddlvad.zoo.cli import add_models_verb, add_run_or_model, resolve_run

# Dataset names users type -> layout loader ("auto" detects it under --root).
DATA_LAYOUTS = {
    "ped1": "auto",
    "ped2": "auto",
    "synthetic": "frames",
    "frames": "frames",
    "ucsd": "ucsd",
    "avenue": "avenue",
    "shanghaitech": "shanghaitech",
    "folder": "folder",
    "auto": "auto",
}


def _add_data(p: argparse.ArgumentParser, preset: bool = True) -> None:
    p.add_argument("--data", default="auto", help="dataset name or layout (ped2, avenue, ...)")
    p.add_argument("--root", help="dataset root folder")
    p.add_argument("--scene", default="", help="scene / camera id (ShanghaiTech, folder)")
    if preset:
        from ddlvad.cli_args import presets_epilog

        p.add_argument(
            "--preset", default="cpu", help="config preset (listed below; default cpu) or YAML file"
        )
        p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep one preset a line
        p.epilog = presets_epilog()
    p.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. train.epochs=2 data.height=64 (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_config(args: argparse.Namespace, base: Config | None = None) -> Config:
    cfg = base or load_preset(getattr(args, "preset", "cpu"))
    if getattr(args, "root", None):
        cfg.data.root = str(Path(args.root).resolve())
    if getattr(args, "data", "auto") not in ("auto", None):
        cfg.data.layout = DATA_LAYOUTS.get(args.data, args.data)
        if base is None:
            cfg.name = args.data
    if getattr(args, "scene", ""):
        cfg.data.scene = args.scene
    apply_overrides(cfg, parse_set(getattr(args, "set", []) or []))
    return cfg.validate("--set / preset")


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


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from ddlvad.train import train

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ddlvad.distributed import launch

        return launch(args.nproc, _strip_nproc(args.argv))

    cfg = build_config(args)
    if not cfg.data.root:
        raise SystemExit("ddlvad train: --root is required")
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    if args.resume and (run_dir / "config.yaml").exists():
        cfg = build_config(args, load_run_config(run_dir))
    if args.resume and args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: pass one")
    if cfg.data.scene == "all":
        from ddlvad.scenes import train_scenes

        out = train_scenes(
            cfg, run_dir, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
        )
        print(json.dumps({"runs": str(run_dir), "scenes": list(out)}, indent=2))
        return 0
    summary = train(
        cfg, run_dir, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    )
    if summary.get("nothing_to_do"):
        print(f"ddlvad train: {summary['nothing_to_do']}", file=sys.stderr)
    print(json.dumps({"run": str(run_dir), **summary}, indent=2))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from ddlvad.evaluate import evaluate
    from ddlvad.rundir import scene_dirs
    from ddlvad.scenes import test_scenes

    resolve_run(args, "test")
    if scene_dirs(args.run):  # a --scene all folder: one run per scene
        over = parse_set(args.set or [])
        for key in ("patch", "shifted", "median", "normalize", "edge"):
            if getattr(args, key, None) is not None:
                over[f"score.{key}"] = getattr(args, key)
        doc = test_scenes(Path(args.run), over, progress=not args.quiet)
        for scene, m in doc["scenes"].items():
            print(f"scene {scene}: frame AUC micro {100 * m['frame_auc_micro']:.2f}")
        print(
            f"median over {len(doc['scenes'])} scenes: "
            f"{100 * doc['median_frame_auc_micro']:.2f} (wrote {args.run}/scenes.json)"
        )
        return 0
    cfg = build_config(args, load_run_config(args.run))
    for key in ("patch", "shifted", "median", "normalize", "edge"):
        if getattr(args, key, None) is not None:  # explicit flags win over --set
            setattr(cfg.score, key, getattr(args, key))
    if args.protocols:
        from ddlvad.protocols import compare_protocols, table_text

        print(table_text(compare_protocols(args.run, cfg, progress=not args.quiet)))
        print(f"wrote {Path(args.run) / 'protocols.json'}")
        return 0
    m = evaluate(args.run, cfg, progress=not args.quiet, pixel_stride=args.pixel_stride)
    s = cfg.score
    print(
        f"protocol: patch {s.patch}{' + shifted grid' if s.shifted else ''} | "
        f"median {s.median or 'off'} | per-video min-max {'on' if s.normalize else 'off'} | "
        f"edge {s.edge}"
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
    print(f"wrote {Path(args.run) / 'metrics.json'} and scores.csv")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ddlvad.info import dataset_info

    cfg = build_config(args)
    print(json.dumps(dataset_info(cfg), indent=2))
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    from ddlvad.objects.cli import run_tracks

    cfg = build_config(args)
    print(
        json.dumps(run_tracks(cfg, Path(args.out), viz=args.viz, progress=not args.quiet), indent=2)
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ddlvad.demo import run_demo

    t0 = time.perf_counter()
    res = run_demo(Path(args.out), epochs=args.epochs, progress=not args.quiet)
    print(
        f"demo: frame AUC micro {100 * res['frame_auc_micro']:.2f} on the synthetic test split "
        f"({res['frames']} frames, {res['anomalous_frames']} anomalous), final sigma "
        f"{res['sigma']:.3f}, {time.perf_counter() - t0:.0f} s"
    )
    print(f"run directory: {res['run']}")
    return 0


# Verbs that live in their own modules: each module defines run(args) -> int, and
#   add_arguments(p: argparse.ArgumentParser) -> None unless ddlvad.cli_args.ARGUMENTS holds
#   the verb's options (modules that import torch: --help must not import them).
PLUGIN_VERBS = {
    "report": ("ddlvad.report", "HTML report and plots for a run"),
    "predict": ("ddlvad.predict", "score a video file, folder or live stream with a run"),
    "export": ("ddlvad.export", "export a run's model to ONNX"),
    "ablate": ("ddlvad.ablate", "the paper's models x modes grid, with seeds"),
}


def _plugin(verb: str, parser: argparse.ArgumentParser) -> None:
    import importlib

    from ddlvad.cli_args import ARGUMENTS

    module_name, _ = PLUGIN_VERBS[verb]
    if verb in ARGUMENTS:  # options here, module imported only when the verb runs
        ARGUMENTS[verb](parser)
        parser.set_defaults(fn=lambda a: _run_plugin(verb, a))
        return
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        parser.set_defaults(fn=lambda a: _missing(verb))
        return
    mod.add_arguments(parser)
    parser.set_defaults(fn=mod.run)


def _run_plugin(verb: str, args: argparse.Namespace) -> int:
    import importlib

    module_name, _ = PLUGIN_VERBS[verb]
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return _missing(verb)
    resolve_run(args, verb)
    return mod.run(args)


def _missing(verb: str) -> int:
    print(f"ddlvad {verb}: not available in this build", file=sys.stderr)
    return 2


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ddlvad",
        description="Video anomaly detection by Dynamic Distinction Learning: train a model "
        "on normal footage of one camera, then score new footage of it.",
        epilog="Start with 'ddlvad demo'. 'ddlvad VERB --help' lists a verb's options.",
    )
    ap.add_argument("--version", action="version", version=f"ddlvad {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB", title="verbs")

    p = sub.add_parser("train", help="train a model into a run directory")
    _add_data(p)
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
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("test", help="score a labelled test split; report AUCs")
    add_run_or_model(p, out=True)
    _add_data(p, preset=False)
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
        "--pixel-stride", type=int, default=2, help="pixel AUC: every Nth row/column (1 = all)"
    )
    g.add_argument(
        "--protocols",
        action="store_true",
        help="one reconstruction pass, then micro/macro AUC under every patch (4-32), grid and "
        "median (0-33) side by side; writes RUN/protocols.json (not scores.csv)",
    )
    p.set_defaults(fn=cmd_test)

    p = sub.add_parser("info", help="JSON summary of a dataset root")
    _add_data(p)
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("tracks", help="object proposals + tracking over training videos")
    _add_data(p)
    p.add_argument("--out", default="tracks_out", help="folder for tracks.json and overlays")
    p.add_argument("--viz", type=int, default=0, help="write N overlay images")
    p.set_defaults(fn=cmd_tracks)

    p = sub.add_parser("demo", help="synthetic scene end to end: generate, train, test")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--epochs", type=int, default=0, help="override the demo preset's epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_demo)

    for verb, (_, help_text) in PLUGIN_VERBS.items():
        _plugin(verb, sub.add_parser(verb, help=help_text))
    add_models_verb(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from ddlvad.errors import run_entry

    return run_entry(f"ddlvad {args.verb}", lambda: args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
