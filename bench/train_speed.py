"""Training speed: samples/s, achieved GFLOP/s vs the CPU's fp32 peak, and data-wait share.

    python bench/train_speed.py --root ../shared/datasets/ped2 --presets cpu,paper --steps 20

Each step is timed in two parts: waiting for the DataLoader's next batch (data) and the DDL
step itself (two forward passes, backward, Adam). FLOPs of one step are counted once with
torch.utils.flop_counter.FlopCounterMode (forward + backward, 2 per multiply-add). The peak
comes from bench/inference.py's cpu_peak (cores x clock x FLOPs/cycle). Without --root a
synthetic scene at the preset's size is generated in a temp folder. --channels-last and
--compile try the train.channels_last / train.compile settings; --batch and --latent override
the preset; --profile N prints the N costliest ops of one step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import cpu_peak  # noqa: E402

from ddlvad.config import load_preset  # noqa: E402
from ddlvad.data.synthetic import SceneSpec, generate  # noqa: E402
from ddlvad.distributed import DistContext  # noqa: E402
from ddlvad.train import DDLNet, apply_speedups, build_modules, make_clips, step_loss  # noqa: E402


def one_step(net, creator, opt, batch, cfg, device) -> None:
    parts, _ = step_loss(net, creator, batch, cfg, device)
    opt.zero_grad(set_to_none=True)
    parts.total.backward()
    opt.step()


def profile_ops(net, creator, opt, batch, cfg, device, top: int) -> None:
    """Print the ``top`` ops by self CPU time over one step, and the convolutions' share."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_step(net, creator, opt, batch, cfg, device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "conv" in e.key or "mkldnn" in e.key)
    print(f"  convolution kernels: {100 * conv / total:.1f}% of self CPU time in one step")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {e.key:50s} {100 * e.self_cpu_time_total / total:5.1f}%  x{e.count}")


def bench(preset: str, root: str, args) -> dict:
    cfg = load_preset(preset)
    cfg.data.root, cfg.data.cache_dir = root, args.cache
    cfg.train.amp = args.amp
    cfg.train.channels_last, cfg.train.compile = args.channels_last, args.compile
    if args.batch:
        cfg.train.batch_size = args.batch
    if args.latent:
        cfg.model.latent = args.latent
    clips, _ = make_clips(cfg, progress=False)
    model, creator = build_modules(cfg)
    net = DDLNet(model, creator)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    loader = torch.utils.data.DataLoader(
        clips,
        batch_size=cfg.train.batch_size,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
    )
    device = DistContext().device
    it = iter(loader)
    batch = next(it)
    with FlopCounterMode(display=False) as fc:
        one_step(net, creator, opt, batch, cfg, device)
    flops = fc.get_total_flops()  # counted eagerly: compiled kernels bypass the counter
    apply_speedups(model, cfg.train)
    waits, comps, first = [], [], 0.0
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        one_step(net, creator, opt, batch, cfg, device)
        t2 = time.perf_counter()
        first = first or t2 - t1  # includes compilation with --compile
        if i >= args.warmup:
            waits.append(t1 - t0)
            comps.append(t2 - t1)
    step = statistics.median([w + c for w, c in zip(waits, comps, strict=True)])
    if args.profile:
        profile_ops(net, creator, opt, next(it), cfg, device, args.profile)
    return {
        "preset": preset,
        "batch": cfg.train.batch_size,
        "step_s": step,
        "samples_s": cfg.train.batch_size / step,
        "gflop_step": flops / 1e9,
        "gflops": flops / 1e9 / statistics.median(comps),
        "data_share": sum(waits) / (sum(waits) + sum(comps)),
        "first_s": first,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="", help="dataset root (default: a synthetic scene)")
    ap.add_argument("--presets", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--channels-last", action="store_true", help="NHWC 2D convolutions")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network")
    ap.add_argument("--batch", type=int, default=0, help="override the preset's batch size")
    ap.add_argument("--latent", type=int, default=0, help="override the preset's latent width")
    ap.add_argument("--profile", type=int, default=0, help="print the top N ops of one step")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ddlvad-bench-cache"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak, how = cpu_peak(torch.get_num_threads())
    print("command: python " + " ".join(sys.argv))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; peak fp32 = {how}")
    root = args.root or str(
        generate(Path(tempfile.mkdtemp()) / "synth", SceneSpec(height=256, width=256, frames=60))
    )
    print(
        f"{'preset':8s} {'batch':>5s} {'step s':>7s} {'samples/s':>9s} {'GFLOP/step':>10s} "
        f"{'GFLOP/s':>8s} {'%peak':>6s} {'data %':>6s} {'1st s':>6s}"
    )
    for p in args.presets.split(","):
        r = bench(p.strip(), root, args)
        print(
            f"{r['preset']:8s} {r['batch']:5d} {r['step_s']:7.3f} {r['samples_s']:9.2f} "
            f"{r['gflop_step']:10.2f} {r['gflops']:8.1f} {100 * r['gflops'] / peak:6.1f} "
            f"{100 * r['data_share']:6.1f} {r['first_s']:6.1f}"
        )


if __name__ == "__main__":
    main()
