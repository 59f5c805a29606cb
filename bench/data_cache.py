"""Frame-cache figures: build time, reload time, and peak RSS while iterating training clips.

    python bench/data_cache.py --root /work/shared/datasets/ped2 --cache /tmp/ddlvad-bench-cache

Builds the cache of every video (both splits) at --size x --size, times a reload of all
entries, then iterates every training clip once (``TrainClips`` without a picker) and reports
the peak RSS (VmHWM, reset before the iteration where the kernel allows it) as an absolute
value and as the increase over the baseline taken after imports. Memory-mapped pages count
towards RSS as file-backed pages (reclaimable page cache), so RssAnon / RssFile are shown too.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from pathlib import Path

import torch

from ddlvad.data.cache import FrameCache, verify_entry
from ddlvad.data.layouts import load_dataset
from ddlvad.train.clips import TrainClips

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def mem() -> dict[str, float]:
    """Selected /proc/self/status fields in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/work/shared/datasets/ped2")
    ap.add_argument("--data", default="auto", help="layout (auto, frames, ucsd, ...)")
    ap.add_argument("--cache", default="/tmp/ddlvad-bench-cache")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--T", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="reuse existing entries (no rebuild)")
    ap.add_argument("--progress", action="store_true", help="show the cache progress bars")
    return ap.parse_args()


def iterate_clips(videos: dict, T: int) -> tuple[int, float, float]:
    """(clips, seconds, sampled peak RssAnon MiB) for one pass over every training clip."""
    clips = TrainClips(list(videos.values()), T, names=list(videos))
    t0 = time.perf_counter()
    peak_anon = 0.0
    for i in range(len(clips)):
        clips[i]
        if i % 200 == 0:
            peak_anon = max(peak_anon, mem()["RssAnon"])
    return len(clips), time.perf_counter() - t0, max(peak_anon, mem()["RssAnon"])


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    cache_dir = Path(args.cache)
    if not args.keep and cache_dir.is_dir():
        for p in cache_dir.glob("*.npy"):  # only cache entries, never anything else
            p.unlink()
    base = mem()
    ds = load_dataset(args.root, args.data)
    records = ds.train + ds.test
    size = (args.size, args.size, args.channels)
    cache = FrameCache(cache_dir, progress=args.progress)

    t0 = time.perf_counter()
    for r in records:
        cache.load(r.path, *size)
    build_s, build_mem = time.perf_counter() - t0, mem()
    t0 = time.perf_counter()
    videos = {r.name: cache.load(r.path, *size) for r in ds.train}
    frames = sum(len(cache.load(r.path, *size)) for r in ds.test) + sum(map(len, videos.values()))
    reload_s = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in cache_dir.glob("*.npy")) / 2**20
    entries = [cache.entry_path(r.path, *size) for r in records]
    t0 = time.perf_counter()
    for e in entries:  # what the first open of each entry costs in a new process
        verify_entry(e, *size)
    verify_s = time.perf_counter() - t0
    verify_mib = sum(e.stat().st_size for e in entries) / 2**20

    reset = reset_peak()
    before = mem()
    n_clips, iter_s, peak_anon = iterate_clips(videos, args.T)
    after = mem()

    print(f"command: python {shlex.join(sys.argv)}")
    print(f"dataset: {ds.root} ({ds.layout}), {len(records)} videos, {frames} frames")
    print(f"working size: {args.size}x{args.size}x{args.channels}, T = {args.T}")
    print(f"baseline after imports: VmRSS {base['VmRSS']:.0f} MiB")
    print(f"cache build ({'reused' if args.keep else 'fresh'}): {build_s:.1f} s, {disk:.0f} MiB")
    print(f"  peak RSS during build: {build_mem['VmHWM']:.0f} MiB")
    print(f"cache reload (all {len(records)} entries): {reload_s:.3f} s")
    print(
        f"integrity check (header, length, CRC-32) of all {len(entries)} entries: "
        f"{verify_s:.3f} s for {verify_mib:.0f} MiB ({verify_mib / verify_s:.0f} MiB/s, warm pages)"
    )
    print(f"iterate {n_clips} training clips once: {iter_s:.1f} s")
    peak_what = "since reset before iterating" if reset else "whole process"
    print(
        f"  peak RSS ({peak_what}): {after['VmHWM']:.0f} MiB, +{after['VmHWM'] - base['VmRSS']:.0f}"
        f" MiB over the baseline (RSS before iterating {before['VmRSS']:.0f} MiB)"
    )
    print(
        f"  at the end: RssAnon {after['RssAnon']:.0f} MiB (peak sampled {peak_anon:.0f}, "
        f"+{peak_anon - base['RssAnon']:.0f} over baseline), RssFile {after['RssFile']:.0f} MiB "
        f"(mapped cache pages, reclaimable)"
    )
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  getrusage ru_maxrss (whole process, build included): {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
