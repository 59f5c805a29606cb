"""int8 through onnxruntime: speed and accuracy of the stream engine's graphs, int8 vs fp32.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/int8.py --root PED2 [--auc] [--calib 64]

The shipped model (``--model``, default ped2) is exported (``ddlvad export``) into a work
folder, then its encoder and head graphs are quantized statically with onnxruntime
(``quantize_static``: QDQ, int8 per-channel weights, uint8 activations, ``--method``
calibration) on ``--calib`` T-frame clips drawn at random (seed 0) from the training
footage under ``--root``: the encoder on their frames, the head on the fp32 encoder's
features of them. Speed: one stream-engine step (encode B new frames, decode B windows),
frames per second at batch 1 and 16, onnxruntime with ``--threads`` threads. ``--auc``: the
test split scored through the scoring engine (``engine_for_run``, the model's protocol)
with each graph pair; frame AUC micro / macro as ``ddlvad test`` reports them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ddlvad.api import Run
from ddlvad.data.clips import to_tensor
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.rundir import ONNX_STREAM_FILES, load_run_config
from ddlvad.scoring.backends import OrtStreamForward
from ddlvad.scoring.engine import engine_for_run
from ddlvad.scoring.evaluate import frame_metrics
from ddlvad.scoring.protocol import ScoreProtocol


def clips(cfg, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` random (T, C, H, W) float32 clips of the training footage."""
    videos = list(load_videos(open_dataset(cfg).train, cfg, False).values())
    rng, T = np.random.default_rng(seed), cfg.model_T
    out = []
    for v in rng.integers(0, len(videos), n):
        i = int(rng.integers(0, len(videos[v]) - T + 1))
        out.append(to_tensor(list(videos[v][i : i + T])).transpose(0, 1).numpy())
    return out


def head_feed(feats: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's per-level (T, c, h, w) features of one clip -> the head's inputs, per
    level (1, c, T, h, w)."""
    return {f"s{k + 1}": f.transpose(1, 0, 2, 3)[None].copy() for k, f in enumerate(feats)}


def quantize(run: Path, cfg, n: int, method: str) -> tuple[Path, Path]:
    """The int8 encoder and head graphs of ``run``'s stream export."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    data = clips(cfg, n)
    enc = ort.InferenceSession(str(run / ONNX_STREAM_FILES[0]), providers=["CPUExecutionProvider"])
    heads = [head_feed(enc.run(None, {"frames": x})) for x in data]
    feeds = {0: [{"frames": x} for x in data], 1: heads}
    out = []
    for k, name in enumerate(ONNX_STREAM_FILES):
        src, pre = run / name, run / f"pre_{name}"
        dst = run / name.replace(".onnx", "_int8.onnx")
        quant_pre_process(str(src), str(pre))
        quantize_static(
            str(pre),
            str(dst),
            Reader(feeds[k]),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
        )
        out.append(dst)
    return out[0], out[1]


class Reader:
    """onnxruntime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict]) -> None:
        self.it = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self.it, None)


def fps(fw, cfg, B: int, budget: float) -> float:
    """Frames per second of the stream engine's steady state at batch ``B``."""
    d, T = cfg.data, cfg.model_T
    import torch

    x = torch.rand(B, d.channels, d.height, d.width, generator=torch.Generator().manual_seed(0))

    def step():
        feats = fw.encode(x)
        fw.head([f[:, :, None].expand(-1, -1, T, -1, -1) for f in feats])

    step()
    times, end = [], time.perf_counter() + budget
    while time.perf_counter() < end:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return B / statistics.median(times)


def auc(run: Path, cfg, fw) -> str:
    ds = open_dataset(cfg)
    videos = load_videos(ds.test, cfg, False)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    engine = engine_for_run(run, ScoreProtocol.from_config(cfg), fw, cfg.model_T, stream=True)
    raw = {name: engine.score_video(v)[0] for name, v in videos.items()}
    m = frame_metrics(raw, labels, engine.pipeline)
    return f"micro {100 * m['frame_auc_micro']:.2f} macro {100 * m['frame_auc_macro']:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="ped2", help="a shipped model")
    ap.add_argument("--root", required=True, help="the model's dataset (training footage)")
    ap.add_argument("--calib", type=int, default=64, help="calibration clips")
    ap.add_argument("--method", default="Percentile", choices=("MinMax", "Percentile", "Entropy"))
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per speed figure")
    ap.add_argument("--auc", action="store_true", help="score the test split with each")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Run.pretrained(args.model, Path(tmp) / "run")
        run.export()
        cfg = load_run_config(run.path)
        cfg.data.root = args.root
        t0 = time.perf_counter()
        enc8, head8 = quantize(run.path, cfg, args.calib, args.method)
        sec = time.perf_counter() - t0
        print(f"quantized on {args.calib} clips ({args.method}) in {sec:.0f} s")
        graphs = {
            "fp32": [run.path / n for n in ONNX_STREAM_FILES],
            "int8": [enc8, head8],
        }
        for name, (enc, head) in graphs.items():
            fw = OrtStreamForward(enc, head, threads=args.threads)
            speed = ", ".join(f"batch {B}: {fps(fw, cfg, B, args.budget):.1f} fps" for B in (1, 16))
            quality = f" | test split AUC {auc(run.path, cfg, fw)}" if args.auc else ""
            print(f"{name} ({args.threads} thread(s)): {speed}{quality}")


if __name__ == "__main__":
    main()
