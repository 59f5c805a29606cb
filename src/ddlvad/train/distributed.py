"""Multi-process training on PyTorch's own engine: torchrun + DistributedDataParallel.

``ddlvad train --nproc N ...`` re-launches itself under ``python -m torch.distributed.run``;
each rank reads RANK / WORLD_SIZE / LOCAL_RANK from the environment torchrun sets. Backend:
gloo on CPU, nccl on CUDA. ``train.batch_size`` is the global batch: each rank takes
``batch_size // world_size`` clips, so a DDP run sees the same clips per step as a
single-process run with the same seed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun set up (no-op when WORLD_SIZE is unset or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    dev = torch.device(f"cuda:{local}" if cuda else (device if device != "auto" else "cpu"))
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if cuda else "gloo")
    return DistContext(rank, world, local, dev)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(ctx: DistContext, flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any rank (e.g. a non-finite loss)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def local_batch(global_batch: int, ctx: DistContext) -> int:
    if global_batch % ctx.world_size:
        raise ValueError(
            f"train.batch_size {global_batch} must be divisible by the {ctx.world_size} processes"
        )
    return global_batch // ctx.world_size


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs ``ddlvad <argv>`` on ``nproc`` local processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "ddlvad",
        *argv,
    ]


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``ddlvad <argv>`` under torchrun and return its exit code."""
    return subprocess.call(torchrun_command(nproc, argv))
