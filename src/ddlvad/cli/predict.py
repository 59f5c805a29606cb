"""``ddlvad predict --run DIR INPUT``: score footage with a run (see ``ddlvad.infer.predict``)."""

from __future__ import annotations

import argparse

from ddlvad.cli.common import add_run_or_model, count, rate, resolve_run
from ddlvad.infer import INPUT_HELP
from ddlvad.scoring import BACKENDS, ENGINES, PRECISIONS

HELP = "score a video file, folder or live stream with a run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help=INPUT_HELP)
    add_run_or_model(p, out=False)
    p.add_argument(
        "--out",
        help="output folder (default RUN/predict/<input name>, with --model NAME "
        "./ddlvad-NAME/predict/<input name>; a video file's name without its extension)",
    )
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
    p.add_argument("--max-frames", type=count, default=0, help="live: stop after N frames")
    p.add_argument("--max-queue", type=count, default=0, help="live: frames queued before drops")
    p.add_argument(
        "--give-up",
        type=rate,
        default=60.0,
        help="live: a camera or URL that fails is reopened with backoff; stop when it stays "
        "down this many seconds (default 60; 0 = never)",
    )
    p.add_argument(
        "--fps",
        type=rate,
        default=0.0,
        help="frame rate for time_s, the overlay and --live pace (default: the video's own; "
        "frame folders have none, so their time_s stays empty without --fps)",
    )
    p.add_argument(
        "--median",
        type=count,
        help="median filter window in frames, 0 or 1 = off (default: the run's); an even "
        "window takes one more frame before each frame than after it",
    )
    p.add_argument(
        "--stride",
        type=count,
        help="the network scores every K-th frame, the frames in between take the linear mix of "
        "the two scores (they wait for the next one; default: the run's score.stride, 1 = "
        "every frame)",
    )
    p.add_argument("--batch-size", type=count, default=0, help="default: the run's score batch")
    p.add_argument(
        "--threads",
        type=count,
        default=0,
        help="torch threads (default: the free cores of this process's CPU set, following "
        "the load)",
    )
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, auto, ...)")
    p.add_argument("--quiet", action="store_true", help="no per-video / per-second lines")


def run(args: argparse.Namespace) -> int:
    from ddlvad.api import Run
    from ddlvad.infer.predict import output_dir, resolve_input, run_predict
    from ddlvad.rundir import check_threshold, pick_device, warn_if_training, warn_if_unhealthy
    from ddlvad.scoring.threads import govern

    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    resolve_run(args, "predict")
    govern(args.threads)
    kind, target = resolve_input(args.input, args.live)
    output_dir(args)  # refuse an output folder in or above the run before any work
    warn_if_training(args.run)
    warn_if_unhealthy(args.run)
    run = Run(args.run)
    protocol = run.protocol().replace(median=args.median, stride=args.stride or None)
    det = run.detector(
        backend=args.backend,
        precision=args.precision,
        engine=args.engine if args.engine != "auto" else ("stream" if kind == "live" else "clip"),
        device=str(pick_device(args.device, "--device")),  # one line for a missing device
        threshold=args.threshold,
        protocol=protocol,
        batch_size=args.batch_size,
    )
    return run_predict(args, det, kind, target)
