"""Inference speed: frames per second, latency per frame and achieved GFLOP/s vs CPU peak.

    python bench/inference.py                       # cpu and paper presets (< 3 min on 2 cores)
    python bench/inference.py --presets tiny --budget 0.5   # smoke run, seconds

For each preset (random weights: speed does not depend on them) and each batch size:
  torch fp32 (fast path) / torch fp32 ref (reference kernels, train.fast=false) / torch bf16
  autocast / onnxruntime fp32, each with the ``clip`` engine (the
  model's forward on every T-frame window, as ``ddlvad test``) and the ``stream`` engine
  (each frame encoded once, see ``ddlvad.infer.detector``); plus ``predict`` rows that push frames
  through the scoring engine's ``Session`` (windows, batching, error maps, patch max; no
  decoding), then the torch stream engine scoring every k-th frame (``--strides``, the others
  holding its score: ``score.stride``) and with JPEG decoding and resizing included (360x240
  camera-sized frames of a synthetic scene; ``decode+resize only`` is that part alone).
  fps = frames / wall time of a batch; latency = wall time of one batch (the time
  a frame waits for its result once its window is complete); ms/frame = latency / batch;
  cam/core = fps / 25 / cores used: the 25 fps cameras one core keeps up with.
  Then, except for the paper preset, one single-threaded process per core at once (cameras
  split between processes): the aggregate fps of the stream-engine predict rows.

FLOPs per frame are counted with torch.utils.flop_counter.FlopCounterMode (2 per multiply-add,
convolutions and matmuls only). Peak fp32 = physical cores used x clock x FLOPs/cycle/core,
where FLOPs/cycle comes from the ISA flags in /proc/cpuinfo (2 FMA pipes x vector width x 2:
AVX-512 64, AVX2+FMA 32, else 8) and the clock is lscpu's max MHz (or cpuinfo's MHz in a VM,
which reports no boost clock). bf16 rows are compared with the same fp32 peak.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ddlvad.config import load_preset
from ddlvad.infer.detector import Detector
from ddlvad.models import create_model
from ddlvad.models.blocks import set_fast_path
from ddlvad.rundir import ONNX_FILE, ONNX_STREAM_FILES
from ddlvad.scoring.backends import OrtForward, OrtStreamForward, TorchForward, native_bf16
from ddlvad.scoring.protocol import ScoreProtocol

BATCHES = {"cpu": (1, 16), "cpu-fast": (1, 16), "paper": (1, 2), "demo": (1, 16), "tiny": (1, 8)}


def batches(preset: str) -> tuple[int, ...]:
    """Batch sizes measured for a preset; (1, 8) for presets not listed (cpu-legacy, files)."""
    return BATCHES.get(preset, (1, 8))


def _field(name: str, text: str) -> str | None:
    m = re.search(rf"^{name}\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else None


def _lscpu() -> str:
    return subprocess.run(["lscpu"], capture_output=True, text=True).stdout


def cpu_cores() -> int:
    """Physical cores: cores per socket x sockets (lscpu)."""
    out = _lscpu()
    return int(_field(r"Core\(s\) per socket", out) or 1) * int(_field(r"Socket\(s\)", out) or 1)


def cpu_peak(threads: int) -> tuple[float, str]:
    """(peak fp32 GFLOP/s, how it was derived) for ``threads`` torch threads."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz, mhz_src = _field("CPU max MHz", _lscpu()), "lscpu max MHz"
    if not mhz:
        mhz, mhz_src = _field("cpu MHz", info), "cpuinfo MHz (no max MHz reported)"
    ghz = float(mhz or 0) / 1000
    flags = set((_field("flags", info) or "").split())
    if "avx512f" in flags:
        fpc, isa = 64, "AVX-512: 2 FMA x 16 fp32 x 2"
    elif {"avx2", "fma"} <= flags:
        fpc, isa = 32, "AVX2+FMA: 2 FMA x 8 fp32 x 2"
    else:
        fpc, isa = 8, "SSE: 2 x 4 fp32"
    used = min(threads, cpu_cores())
    peak = used * ghz * fpc
    how = f"{used} cores x {ghz:.3f} GHz ({mhz_src}) x {fpc} FLOPs/cycle ({isa}) = {peak:.1f}"
    return peak, how


def flops(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def count_flops(cfg) -> tuple[float, float]:
    """FLOPs per frame of the clip and stream engines, counted on meta tensors (no compute)."""
    d = cfg.data
    with torch.device("meta"):
        model = create_model(cfg).eval()
        X = torch.zeros(1, d.channels, model.T, d.height, d.width)
    fw = TorchForward(model, "fp32", "meta")
    clip = flops(lambda: fw(X))
    return clip, (flops(lambda: stream_step(fw, X[:, :, 0], model.T)) if model.T > 1 else clip)


def measure(fn: Callable[[], object], budget: float) -> tuple[float, int]:
    """(median seconds per call, calls timed). A call slower than budget/3 is timed once,
    its first call included (no separate warm-up)."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    if first > budget / 3:
        return first, 1
    times: list[float] = []
    t_end = time.perf_counter() + budget
    while time.perf_counter() < t_end and len(times) < 200:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def stream_step(fw, x: torch.Tensor, T: int) -> torch.Tensor:
    """Stream engine in steady state: encode the B new frames (B, C, H, W), decode B windows."""
    feats = fw.encode(x)
    return fw.head([f[:, :, None].expand(-1, -1, T, -1, -1) for f in feats])


def engines(model, cfg, B: int, onnx_dir: Path | None) -> dict:
    """variant -> (callable running one batch of B frames, FLOPs per frame)."""
    d, T = cfg.data, model.T
    g = torch.Generator().manual_seed(0)
    X = torch.rand(B, d.channels, T, d.height, d.width, generator=g)  # (B, C, T, H, W)
    x = X[:, :, T // 2]  # (B, C, H, W)
    fp32, bf16 = TorchForward(model, "fp32", "cpu"), TorchForward(model, "bf16", "cpu")
    clip_f, stream_f = count_flops(cfg)
    ref = TorchForward(set_fast_path(copy.deepcopy(model), False), "fp32", "cpu")
    out = {}
    for name, fw in (("fp32", fp32), ("fp32 ref", ref), ("bf16", bf16)):
        # "ref": the reference kernels (train.fast=false); the others run the fast path
        out[f"torch {name} clip"] = (lambda fw=fw: fw(X), clip_f)
        if T > 1:
            out[f"torch {name} stream"] = (lambda fw=fw: stream_step(fw, x, T), stream_f)
    if onnx_dir is not None:
        ort = OrtForward(onnx_dir / ONNX_FILE)
        out["onnxruntime fp32 clip"] = (lambda: ort(X), clip_f)
        if T > 1:
            ort_s = OrtStreamForward(*(onnx_dir / n for n in ONNX_STREAM_FILES))
            out["onnxruntime fp32 stream"] = (lambda: stream_step(ort_s, x, T), stream_f)
    return out


def source_frames(frames: int, height: int = 240, width: int = 360) -> list[bytes]:
    """``frames`` JPEG-encoded (quality 90) frames of a synthetic scene at a camera-like size
    (UCSD Ped2's 360x240), for the rows that include decoding."""
    from ddlvad.data.synthetic import SceneSpec, make_background, render_video

    spec = SceneSpec(height=height, width=width, frames=frames, seed=0)
    rng = np.random.default_rng(0)
    gray, *_ = render_video(spec, make_background(spec, rng), rng, None)
    return [cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for g in gray]


def decoded(jpegs: list[bytes]):
    """The frames as a camera source yields them: decoded, BGR -> RGB (``data.sources``)."""
    for b in jpegs:
        img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
        yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def predict_rows(model, cfg, B: int, frames: int, onnx_dir: Path | None, strides=()) -> dict:
    """Detector.score end to end (windows, batching, error maps, patch max; no decoding) on
    ``frames`` random working-size frames, per backend and engine; then the torch stream
    engine scoring every k-th frame (``score.stride``) for k in ``strides``, the same in
    bf16 on a CPU with native bf16, and with the decoding and resizing of JPEG frames
    included."""
    d = cfg.data
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (frames, d.height, d.width, d.channels), dtype=np.uint8)
    cfg.score.batch_size = B
    fws = {"torch": TorchForward(model, "fp32", "cpu")}
    if onnx_dir is not None:
        fws["onnxruntime"] = OrtStreamForward(*(onnx_dir / n for n in ONNX_STREAM_FILES))
    rows = {}
    for (backend, fw), engine in ((f, e) for f in fws.items() for e in ("clip", "stream")):
        if backend == "onnxruntime" and engine == "clip":
            fw = OrtForward(onnx_dir / ONNX_FILE)
        det = Detector(cfg, fw, engine=engine)
        rows[f"predict {backend} {engine} ({frames} fr)"] = lambda det=det: det.score(video)
    for k in strides:
        det = Detector(cfg, fws["torch"], engine="stream", protocol=stride_protocol(cfg, k))
        rows[f"predict torch stream k={k} ({frames} fr)"] = lambda det=det: det.score(video)
    if native_bf16():  # what precision "auto" picks on this CPU
        bf16 = TorchForward(model, "bf16", "cpu")
        for k in (1, *strides):
            det = Detector(cfg, bf16, engine="stream", protocol=stride_protocol(cfg, k))
            name = f"predict torch bf16 stream{f' k={k}' if k > 1 else ''} ({frames} fr)"
            rows[name] = lambda det=det: det.score(video)
    jpegs = source_frames(frames)
    det = Detector(cfg, fws["torch"], engine="stream")
    rows[f"predict torch stream +jpeg ({frames} fr)"] = lambda: det.score(decoded(jpegs))
    rows[f"decode+resize only ({frames} fr)"] = lambda: [det.prepare(f) for f in decoded(jpegs)]
    return rows


def stride_protocol(cfg, k: int) -> ScoreProtocol:
    return ScoreProtocol.from_config(cfg).replace(stride=k)


def export_tmp(model, cfg, folder: str) -> Path | None:
    """The run's ONNX graphs (see ``ddlvad.infer.export``) in ``folder``; None without onnx."""
    try:
        from ddlvad.infer.export import onnx_graphs, save_onnx

        for name, module, args, names in onnx_graphs(model, cfg):
            save_onnx(Path(folder) / name, module, args, names, {})
        return Path(folder)
    except ImportError as e:
        print(f"  onnxruntime rows skipped: {e}")
        return None


HEADER = (
    f"{'variant':34s} {'batch':>5s} {'fps':>8s} {'ms/batch':>9s} {'ms/frame':>9s} "
    f"{'GFLOP/f':>8s} {'GFLOP/s':>8s} {'%peak':>6s} {'n':>3s} {'cam/core':>8s}"
)
CAMERA_FPS = 25.0  # a camera's frame rate, for cameras per core
CORES = [1]  # cores the measured threads use (set in main)


def cams(fps: float) -> str:
    """Cameras at ``CAMERA_FPS`` one core keeps up with, at ``fps`` on ``CORES[0]`` cores."""
    return f"{fps / CAMERA_FPS / CORES[0]:8.2f}"


RATIO: dict[str, float] = {}  # bf16 / fp32 time per frame, by engine, from earlier rows


def probe_bf16() -> float:
    """bf16-autocast / fp32 time of a mid-sized conv, so slow bf16 rows can be skipped."""
    conv = torch.nn.Conv2d(32, 32, 3, padding=1).eval()
    x = torch.rand(4, 32, 64, 64)
    times = {}
    for name in ("fp32", "bf16"):
        fw = TorchForward(conv, name, "cpu")
        times[name] = measure(lambda fw=fw: fw(x), 0.3)[0]
    return times["bf16"] / times["fp32"]


def bench_preset(name: str, args, peak: float) -> None:
    cfg = load_preset(name)
    d, m = cfg.data, cfg.model
    model = create_model(cfg).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"\n== preset {name}: {d.height}x{d.width}x{d.channels}, T={d.T}, {m.name} latent "
        f"{m.latent}, {params:.1f} M params ==\n{HEADER}"
    )
    last: dict[str, float] = {}  # variant -> seconds per frame at the last batch measured
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = None if args.no_onnx else export_tmp(model, cfg, tmp)
        for B in batches(name):
            for variant, (fn, f) in engines(model, cfg, B, onnx_dir).items():
                if not _too_slow(variant, last, args.max_call, B):
                    _row(variant, B, fn, f, last, args.budget, peak)
            if name != "paper" and B > 1:
                frames = max(args.frames, 2 * B)
                strides = args.strides if model.T > 1 else ()
                rows = predict_rows(model, cfg, B, frames, onnx_dir, strides)
                for variant, fn in rows.items():
                    sec, n = measure(fn, args.budget)
                    print(
                        f"{variant:34s} {B:5d} {frames / sec:8.1f} {'':9s} "
                        f"{1000 * sec / frames:9.2f} {'':8s} {'':8s} {'':6s} {n:3d} "
                        f"{cams(frames / sec)}"
                    )


def _row(variant: str, B: int, fn, f: float, last: dict, budget: float, peak: float) -> None:
    sec, n = measure(fn, budget)
    last[variant] = sec / B
    fp32 = variant.replace("bf16", "fp32")
    if "bf16" in variant and fp32 in last:
        RATIO[variant.split()[-1]] = last[variant] / last[fp32]
    gfs = f * B / sec / 1e9
    print(
        f"{variant:34s} {B:5d} {B / sec:8.1f} {1000 * sec:9.1f} {1000 * sec / B:9.2f} "
        f"{f / 1e9:8.3f} {gfs:8.1f} {100 * gfs / peak:6.1f} {n:3d} {cams(B / sec)}"
    )


def _too_slow(variant: str, last: dict[str, float], max_call: float, B: int) -> bool:
    """Skip a row whose estimated seconds per batch exceed ``max_call``: from the same variant
    at a smaller batch, or for bf16 (10x slower than fp32 without native bf16) from fp32 x
    the bf16/fp32 ratio measured on an earlier preset."""
    fp32, engine = variant.replace("bf16", "fp32"), variant.split()[-1]
    if variant in last:
        est = B * last[variant]
    elif "bf16" in variant and fp32 in last and engine in RATIO:
        est = B * last[fp32] * RATIO[engine]
    else:
        return False
    if est > max_call:
        print(f"{variant:34s} {B:5d}   skipped: about {est:.0f} s per batch (estimated)")
        return True
    return False


def _worker(preset: str, frames: int, budget: float, onnx: bool, barrier, queue) -> None:
    """One single-threaded process: fps of the stream-engine predict rows."""
    torch.set_num_threads(1)
    cfg = load_preset(preset)
    model = create_model(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = export_tmp(model, cfg, tmp) if onnx else None
        rows = predict_rows(model, cfg, batches(preset)[-1], frames, onnx_dir)
        barrier.wait()  # every process measures at the same time
        plain = {k: fn for k, fn in rows.items() if k.endswith(f"stream ({frames} fr)")}
        queue.put({k: frames / measure(fn, budget)[0] for k, fn in plain.items()})


def bench_parallel(preset: str, workers: int, args) -> None:
    """``workers`` single-threaded processes at once (one per core, cameras split between
    them): per-process and aggregate fps of ``predict`` with the stream engine."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    a = (preset, 2 * args.frames, 2 * args.budget, not args.no_onnx, barrier, queue)
    procs = [ctx.Process(target=_worker, args=a) for _ in range(workers)]
    for pr in procs:
        pr.start()
    res = [queue.get() for _ in procs]
    for pr in procs:
        pr.join()
    B = batches(preset)[-1]
    print(f"\n== {workers} processes x 1 thread at once, preset {preset}, batch {B} ==")
    for k in res[0]:
        each = ", ".join(f"{r[k]:.1f}" for r in res)
        total = sum(r[k] for r in res)
        print(
            f"{k:34s} aggregate {total:7.1f} fps, {total / CAMERA_FPS / workers:.2f} cameras "
            f"per core (per process: {each})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--presets", default="cpu,paper", help="comma-separated preset names")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per measurement")
    ap.add_argument(
        "--max-call", type=float, default=20.0, help="skip rows estimated slower (s/batch)"
    )
    ap.add_argument("--frames", type=int, default=64, help="frames per predict row")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime rows")
    ap.add_argument(
        "--strides",
        type=lambda t: [int(k) for k in t.split(",") if k],
        default=[2, 4],
        help="predict rows scoring every k-th frame (score.stride), comma-separated",
    )
    ap.add_argument(
        "--workers", type=int, default=-1, help="parallel 1-thread processes (-1: one per core)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    CORES[0] = min(threads, cpu_cores())
    peak, how = cpu_peak(threads)
    isa = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {threads} threads, ISA {isa}")
    print(f"native bf16 (avx512_bf16/amx_bf16): {native_bf16()}; cpu count {os.cpu_count()}")
    print(f"peak fp32 GFLOP/s = {how}")
    ratio = probe_bf16()
    RATIO.update(clip=ratio, stream=ratio)  # replaced by measured ratios as rows come in
    print(f"bf16/fp32 time on a probe conv: {ratio:.1f}x")
    t0 = time.perf_counter()
    for name in (n.strip() for n in args.presets.split(",")):
        bench_preset(name, args, peak)
        workers = args.workers if args.workers >= 0 else cpu_cores()
        if name != "paper" and workers > 1:
            bench_parallel(name, workers, args)
    print(f"\nbench wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
