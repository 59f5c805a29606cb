"""Options several verbs share: the dataset (--data/--root/--scene/--preset/--set), the run
(--run or a shipped --model), and the config they resolve to. Imports nothing heavy."""

from __future__ import annotations

import argparse
import math
from importlib import resources
from pathlib import Path

from ddlvad.config import Config, apply_overrides, load_preset, parse_set

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
# Verbs that write into the run directory: --model gives them a copy of the entry to write in.
WRITING_VERBS = ("test", "report", "export")


def _number(text: str, kind: type, low: float, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, 0, "an integer >= 0")


def rate(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, 0.0, "a number >= 0")


def add_rule_arguments(p: argparse.ArgumentParser) -> None:
    """The alert rule's flags (``serve``, ``calibrate --alarms-per-hour``), with
    ``RuleConfig``'s defaults."""
    from ddlvad.serve.rules import RuleConfig

    d = RuleConfig(threshold=0.0)
    p.add_argument(
        "--min-event",
        type=rate,
        default=d.min_event_s,
        help=f"seconds an event must last to become an alert ({d.min_event_s:g})",
    )
    p.add_argument(
        "--cooldown",
        type=rate,
        default=d.cooldown_s,
        help=f"seconds after an alert during which new events are suppressed ({d.cooldown_s:g})",
    )
    p.add_argument(
        "--max-event",
        type=rate,
        default=d.max_event_s,
        help=f"an event longer than this is decided at that length, seconds ({d.max_event_s:g})",
    )


def preset_lines() -> list[tuple[str, str]]:
    """(name, first comment line) of each preset YAML in ``ddlvad/configs``, sorted by name."""
    out = []
    for f in resources.files("ddlvad").joinpath("configs").iterdir():
        if f.name.endswith(".yaml"):
            first = f.read_text(encoding="utf-8").splitlines()[:1] or [""]
            out.append((f.name[: -len(".yaml")], first[0].lstrip("#").strip()))
    return sorted(out)


def presets_epilog() -> str:
    """The presets, one line each, for the epilog of the verbs that take ``--preset``."""
    rows = preset_lines()
    width = max((len(name) for name, _ in rows), default=0)
    return "presets (--preset NAME):\n" + "\n".join(
        f"  {name:<{width}}  {text}" for name, text in rows
    )


def add_data(p: argparse.ArgumentParser, preset: bool = True) -> None:
    """--data, --root, --scene, [--preset], --set and --quiet."""
    p.add_argument("--data", default="auto", help="dataset name or layout (ped2, avenue, ...)")
    p.add_argument("--root", help="dataset root folder")
    p.add_argument("--scene", default="", help="scene / camera id (ShanghaiTech, folder)")
    if preset:
        p.add_argument("--preset", help="config preset (listed below; default cpu) or YAML file")
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
    """The config the data options describe: ``base`` (a run's) or the preset, then
    --root/--data/--scene and every --set, validated."""
    cfg = base or load_preset(getattr(args, "preset", None) or "cpu")
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


def add_run_or_model(p: argparse.ArgumentParser, *, out: bool):
    """--run DIR or --model NAME (one of them); ``out``: also add --out for the run copy.
    Returns the mutually exclusive group, for a verb that takes a third kind of source."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="run directory (config.yaml + checkpoints)")
    g.add_argument(
        "--model",
        metavar="NAME",
        help="a shipped pretrained model instead of a run ('ddlvad models' lists them); "
        "a NAME holding '/' is a PATH: a model folder from outside the package, run as is "
        "(its files are checked against its own card.json, which is not signed: use folders "
        "you trust)",
    )
    if out:
        p.add_argument(
            "--out",
            help="with --model: folder that receives a copy of the model and the outputs "
            "(default ./ddlvad-NAME); the installed package is never written",
        )
    return g


def resolve_run(args: argparse.Namespace, verb: str) -> None:
    """Point ``args.run`` at a run folder when ``--model`` was given (checking sha256s).

    Writing verbs get a copy at ``--out``; predict reads the verified entry in place
    (``args.read_only``), or with ``--backend onnxruntime`` the copy ``ddlvad export
    --model NAME`` wrote its graphs into, and writes its outputs under
    ``./ddlvad-NAME/predict/`` unless ``--out`` says otherwise."""
    from ddlvad import zoo
    from ddlvad.rundir import predict_dir

    name = getattr(args, "model", None)
    if not name:
        return
    copy = zoo.default_run_dir(name)
    if verb in WRITING_VERBS:
        args.run = str(zoo.materialize(name, args.out or copy))
        return
    if getattr(args, "backend", "torch") == "onnxruntime":
        args.run = str(exported_copy(name, copy))
    else:
        args.run, args.read_only = str(zoo.resolve(name)), True
    if not getattr(args, "out", None):
        args.out = str(predict_dir(copy, str(args.input)))


def exported_copy(name: str, copy: Path) -> Path:
    """The run copy of model ``name`` that ``ddlvad export --model NAME`` wrote its ONNX
    graphs into (``copy``, its default ``--out``), checked to hold that model's files."""
    from ddlvad import zoo
    from ddlvad.rundir import ONNX_FILE

    if not (copy / ONNX_FILE).is_file():
        raise FileNotFoundError(
            f"{copy / ONNX_FILE}: not found; --backend onnxruntime with --model {name} reads "
            f"the graphs `ddlvad export --model {name}` writes there (exported elsewhere with "
            f"--out DIR? then use --run DIR)"
        )
    return zoo.materialize(name, copy)  # every file there is the model's (nothing is copied)
