"""Training speed: samples/s, achieved GFLOP/s vs the CPU's fp32 peak, and data-wait share.

    python bench/train_speed.py --root ../shared/datasets/ped2 --presets cpu,paper --steps 20

The fast path (train.fast, the default) and the reference path (train.fast=false) train
side by side from the same weights, in alternating rounds, so that both see the same noisy
machine; the speed-up printed is the median of the per-round ratios, with its range.
Each step is timed in two parts: waiting for the DataLoader's next batch (data) and the DDL
step itself (two forward passes, backward, Adam). FLOPs of one step are counted once with
torch.utils.flop_counter.FlopCounterMode (forward + backward, 2 per multiply-add). The peak
comes from bench/inference.py's cpu_peak (cores x clock x FLOPs/cycle). Without --root a
synthetic scene at the preset's size is generated in a temp folder. --channels-last and
--compile try the train.channels_last / train.compile settings, --imprecise-bn
train.precise_bn=false; --batch and --latent override
the preset; --profile N prints the N costliest ops of one step for each path; --fast-only
skips the reference path.
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
from ddlvad.models import create_model, create_pseudo  # noqa: E402
from ddlvad.train.data import make_clips  # noqa: E402
from ddlvad.train.distributed import DistContext  # noqa: E402
from ddlvad.train.loop import DDLNet, apply_speedups, step_loss  # noqa: E402


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


def make_net(cfg, fast: bool):
    """Model + creator + Adam, seeded so that the paired paths start from the same weights."""
    torch.manual_seed(cfg.train.seed)
    model, creator = create_model(cfg), create_pseudo(cfg)
    net = DDLNet(model, creator, fast=fast, precise_bn=cfg.train.precise_bn)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    return net, creator, opt


def layer_times(cfg, batch, rounds: int = 5) -> None:
    """Forward + backward ms of each ConvBlock and Conv3D skip at its real input shape in one
    DDL step, fast and reference path in alternating rounds (which layers hold a step back)."""
    from ddlvad.models.blocks import ConvBlock, set_fast_path

    torch.manual_seed(0)
    model = create_model(cfg)
    shapes: dict[str, tuple] = {}

    def keep_shape(name: str):
        def hook(module, inputs, output) -> None:  # returns None: the output is kept
            shapes.setdefault(name, tuple(inputs[0].shape))

        return hook

    hooks = [
        m.register_forward_hook(keep_shape(n))
        for n, m in model.named_modules()
        if isinstance(m, ConvBlock | torch.nn.Conv3d)
    ]
    with torch.no_grad():
        model(batch["X"])
    for h in hooks:
        h.remove()
    print(f"  {'layer':22s} {'input':24s} {'ref ms':>7s} {'fast ms':>7s} {'x':>5s}  (x2: 2 passes)")
    for name, shape in shapes.items():
        m = model.get_submodule(name)
        grad = name != "encoder.blocks.0"
        x = torch.rand(shape, requires_grad=grad)
        # the fast path's activations are channels-last (NHWC), the reference path's NCHW
        fmt = torch.channels_last if len(shape) == 4 else torch.contiguous_format
        x_fast = x.detach().contiguous(memory_format=fmt).requires_grad_(grad)
        ts: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for fast in (False, True):
                if isinstance(m, ConvBlock):
                    set_fast_path(m, fast)
                m.zero_grad(set_to_none=True)  # a grad keeps the layout it was made in
                t0 = time.perf_counter()
                m(x_fast if fast else x).sum().backward()
                ts[fast].append(time.perf_counter() - t0)
        r, f = statistics.median(ts[False]) * 1e3, statistics.median(ts[True]) * 1e3
        print(f"  {name:22s} {str(list(shape)):24s} {r:7.1f} {f:7.1f} {r / f:5.2f}")


def bench(preset: str, root: str, args) -> list[dict]:
    """Time the fast and the reference path in alternating rounds (median of each)."""
    cfg = load_preset(preset)
    cfg.data.root, cfg.data.cache_dir = root, args.cache
    cfg.train.amp = args.amp
    cfg.train.channels_last, cfg.train.compile = args.channels_last, args.compile
    cfg.train.precise_bn = not args.imprecise_bn
    if args.batch:
        cfg.train.batch_size = args.batch
    if args.latent:
        cfg.model.latent = args.latent
    clips, _ = make_clips(cfg, progress=False)
    loader = torch.utils.data.DataLoader(
        clips,
        batch_size=cfg.train.batch_size,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
    )
    device = DistContext().device
    it = iter(loader)
    paths = {"fast": True, "reference": False} if not args.fast_only else {"fast": True}
    nets = {k: make_net(cfg, fast) for k, fast in paths.items()}
    batch = next(it)
    flops = {}
    for k, (net, creator, opt) in nets.items():
        with FlopCounterMode(display=False) as fc:
            one_step(net, creator, opt, batch, cfg, device)
        flops[k] = fc.get_total_flops()  # counted eagerly: compiled kernels bypass the counter
        apply_speedups(net.model, cfg.train)
    waits = {k: [] for k in nets}
    comps = {k: [] for k in nets}
    first = {k: 0.0 for k in nets}
    for i in range(args.warmup + args.steps):
        for k, (net, creator, opt) in nets.items():  # alternate: both see the same machine
            t0 = time.perf_counter()
            batch = next(it)
            t1 = time.perf_counter()
            one_step(net, creator, opt, batch, cfg, device)
            t2 = time.perf_counter()
            first[k] = first[k] or t2 - t1  # includes compilation with --compile
            if i >= args.warmup:
                waits[k].append(t1 - t0)
                comps[k].append(t2 - t1)
    if args.layers:
        layer_times(cfg, next(it))
    if args.profile:
        for k, (net, creator, opt) in nets.items():
            print(f"  profile, {k} path:")
            profile_ops(net, creator, opt, next(it), cfg, device, args.profile)
    rows = []
    for k in nets:
        step = statistics.median([w + c for w, c in zip(waits[k], comps[k], strict=True)])
        rows.append(
            {
                "preset": preset,
                "path": k,
                "batch": cfg.train.batch_size,
                "step_s": step,
                "samples_s": cfg.train.batch_size / step,
                # the reference path's FLOPs: the useful work, whichever kernels do it
                "gflop_step": flops.get("reference", flops["fast"]) / 1e9,
                "gflops": flops.get("reference", flops["fast"]) / 1e9 / statistics.median(comps[k]),
                "data_share": sum(waits[k]) / (sum(waits[k]) + sum(comps[k])),
                "first_s": first[k],
                "comps": comps[k],
            }
        )
    return rows


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
    ap.add_argument(
        "--imprecise-bn",
        action="store_true",
        help="train.precise_bn=false: training BatchNorm on channels-last memory (faster, "
        "far less precise statistics)",
    )
    ap.add_argument("--batch", type=int, default=0, help="override the preset's batch size")
    ap.add_argument("--latent", type=int, default=0, help="override the preset's latent width")
    ap.add_argument("--profile", type=int, default=0, help="print the top N ops of one step")
    ap.add_argument("--fast-only", action="store_true", help="skip the reference path")
    ap.add_argument("--layers", action="store_true", help="per-layer fwd+bwd ms, both paths")
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
        f"{'preset':8s} {'path':9s} {'batch':>5s} {'step s':>7s} {'samples/s':>9s} "
        f"{'GFLOP/step':>10s} {'GFLOP/s':>8s} {'%peak':>6s} {'data %':>6s} {'1st s':>6s}"
    )
    for p in args.presets.split(","):
        rows = bench(p.strip(), root, args)
        for r in rows:
            print(
                f"{r['preset']:8s} {r['path']:9s} {r['batch']:5d} {r['step_s']:7.3f} "
                f"{r['samples_s']:9.2f} {r['gflop_step']:10.2f} {r['gflops']:8.1f} "
                f"{100 * r['gflops'] / peak:6.1f} {100 * r['data_share']:6.1f} {r['first_s']:6.1f}"
            )
        if len(rows) == 2:
            ratios = [b / a for a, b in zip(rows[0]["comps"], rows[1]["comps"], strict=True)]
            print(
                f"{p.strip()}: fast / reference speed-up {statistics.median(ratios):.2f}x "
                f"(median of {len(ratios)} paired rounds; min {min(ratios):.2f}, "
                f"max {max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
