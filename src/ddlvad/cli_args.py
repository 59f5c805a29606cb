"""Command-line options of the verbs whose code imports torch (predict, export, report).

They live here, apart from that code, so that building the parser, ``ddlvad --help`` and
``ddlvad VERB --help`` import neither torch nor scikit-learn: the verb's module is imported
only when the verb runs. This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import resources

from ddlvad.zoo.cli import add_run_or_model

# The same names as ddlvad.detector's (a test checks they agree); copied so that --help
# does not import the detector, hence torch.
BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("clip", "stream")
INPUT_HELP = (
    "a video file, a folder of frames or of videos, a camera index, or an rtsp:// / http:// URL"
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


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help=INPUT_HELP)
    add_run_or_model(p, out=False)
    p.add_argument("--out", help="output folder (default RUN/predict/<input name>)")
    p.add_argument("--threshold", type=float, help="alert threshold (default: threshold.json)")
    p.add_argument(
        "--overlay",
        action="store_true",
        help="write an annotated video: H.264 .mp4 where OpenCV has an H.264 encoder, "
        "else MPEG-4 Part 2 (plays in VLC, mpv, ffplay; not in browsers)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="inference engine: torch, or onnxruntime (needs the onnx extra and the files "
        "written by ddlvad export)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="torch precision; auto = bf16 on CPUs with native bf16 (AVX512-BF16/AMX), else "
        "fp32 (fp32 gives scores bit-identical to ddlvad test)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", *ENGINES),
        default="auto",
        help="clip = the model's forward on every window (equals ddlvad test); stream = "
        "reuse each frame's encoder features (C3DSU, faster); auto: clip for files, "
        "stream for live",
    )
    p.add_argument("--live", action="store_true", help="play a video file as a live stream")
    p.add_argument("--max-frames", type=int, default=0, help="live: stop after N frames")
    p.add_argument("--max-queue", type=int, default=0, help="live: frames queued before drops")
    p.add_argument(
        "--fps",
        type=float,
        default=0.0,
        help="frame rate for time_s, the overlay and --live pace (default: the video's own; "
        "frame folders have none, so their time_s stays empty without --fps)",
    )
    p.add_argument("--median", type=int, help="median filter window (default: the run's)")
    p.add_argument("--batch-size", type=int, default=0, help="default: the run's score batch")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--quiet", action="store_true", help="no per-video / per-second lines")


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    add_run_or_model(p, out=True)
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime vs torch comparison"
    )


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    add_run_or_model(p, out=True)
    p.add_argument("--compare", metavar="OTHER_RUN", help="a run to compare with (e.g. no DDL)")
    p.add_argument(
        "--frames", help="test frames for the compare panel, VIDEO:FRAME,... (default: auto)"
    )
    p.add_argument("--clips", type=int, default=3, help="training clips in the Figure 4 panel")
    p.add_argument(
        "--max-videos", type=int, default=0, help="timelines for the first N videos (0 = all)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# verb -> its options; the verb's own module (cli.PLUGIN_VERBS) supplies run(args).
ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "predict": add_predict_arguments,
    "export": add_export_arguments,
    "report": add_report_arguments,
}
