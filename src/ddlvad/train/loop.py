"""Training loop: Adam + StepLR, DDL loss, per-step logs, atomic checkpoints, resume.

Repeatability: the shuffle order and pseudo-anomaly masks depend on (seed, epoch) only, and
the torch RNG state is saved with every checkpoint, so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import csv
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ddlvad.checkpoint import save_checkpoint
from ddlvad.config import Config
from ddlvad.io import atomic_write_json
from ddlvad.models import create_model, create_pseudo
from ddlvad.models.blocks import set_fast_path
from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.objects.masks import MASK_NONE, MASK_RANDOM, MASK_TRACK
from ddlvad.rundir import (
    CHECKPOINT,
    CONFIG,
    SIGMA_CSV,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    claim_run,
    clear_run,
    load_trained,
    read_summary,
)
from ddlvad.train.calibrate import write_threshold
from ddlvad.train.data import make_clips, training_videos
from ddlvad.train.distributed import (
    DistContext,
    barrier,
    broadcast_flag,
    init_distributed,
    local_batch,
    shutdown,
)
from ddlvad.train.ema import make_ema, refresh_run
from ddlvad.train.loss import LossParts, ddl_loss
from ddlvad.train.resume import StartPoint, batches_per_epoch, nothing_left, prepare_run

LOG_FIELDS = ["epoch", "step", "loss", "recon", "dist", "P", "N", "sigma", "lr", "masked"]


class NonFiniteLoss(RuntimeError):
    """Training produced NaN/inf; the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def apply_speedups(model: nn.Module, tc) -> None:
    """Opt-in speed settings that leave the maths unchanged: NHWC 2D convolutions (Conv3D
    weights are 5-D and stay as they are) and in-place ``torch.compile`` (state_dict keys
    are kept, so checkpoints are interchangeable with uncompiled runs)."""
    if tc.channels_last:
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.to(memory_format=torch.channels_last)
    if tc.compile:
        model.compile()


class DDLNet(nn.Module):
    """Model f and pseudo-anomaly creator in one module, so that DDP synchronises the
    gradient of l together with the network's (l is used outside f)."""

    def __init__(self, model: nn.Module, creator: PseudoAnomalyCreator, fast: bool = True) -> None:
        super().__init__()
        self.model, self.creator = model, creator
        set_fast_path(model, fast)
        self.fast = fast
        self.ema = None  # a WeightEMA (not a submodule), set by training when train.ema > 0

    def forward(
        self, X: torch.Tensor, M: torch.Tensor | None = None, A: torch.Tensor | None = None
    ):
        """X, A: (B, C, T, H, W); M: (B, 1, T, H, W) -> f(X), X_A, f(X_A) (None without M)."""
        if M is None:
            return self.model(X), None, None
        A = torch.rand_like(X) if A is None else A
        X_A = self.creator(X, M, A)  # eqs (1)-(2)
        if self.fast and torch.is_grad_enabled():
            # X_A = X + s * M * (A - X): the two passes share f's first convolution
            # (ConvBlock.forward_pair; same maths, faster)
            y, ya = self.model.forward_pair(X, self.creator.sigma(), M * (A - X))
            return y, X_A, ya
        return self.model(X), X_A, self.model(X_A)


def param_groups(net: DDLNet, lr: float, l_lr_scale: float) -> list[dict]:
    """Adam's parameter groups: one (the authors' setting, Adam at ``lr`` on everything
    including l) unless ``l_lr_scale`` != 1, when l gets its own group at ``lr * l_lr_scale``.
    StepLR scales both groups alike, so the ratio holds for the whole run."""
    if l_lr_scale == 1.0:
        return [{"params": list(net.parameters())}]
    l_params = list(net.creator.parameters())
    ids = {id(p) for p in l_params}
    rest = [p for p in net.parameters() if id(p) not in ids]
    groups = [{"params": rest}]
    if l_params:  # only the dynamic mode learns l
        groups.append({"params": l_params, "lr": lr * l_lr_scale})
    return groups


def step_loss(
    net: nn.Module, creator: PseudoAnomalyCreator, batch: dict, cfg: Config, device: torch.device
) -> tuple[LossParts, int]:
    """One forward of eqs (1)-(7) on a batch; returns the loss parts and #masked clips."""
    X = batch["X"].to(device)  # (B, C, T, H, W)
    t = X.shape[2] // 2
    x_t = X[:, :, t]  # (B, C, H, W): the frame to reconstruct
    masked = int((batch["kind"] != MASK_NONE).sum())
    use = creator.enabled and masked > 0
    M = batch["M"].to(device) if use else None  # (B, 1, T, H, W)
    A = batch["A"].to(device) if use and "A" in batch else None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.amp):
        y, X_A, ya = net(X, M, A)
    y, ya = y.float(), (ya.float() if ya is not None else None)
    if not use:
        return ddl_loss(x_t, y, fast=cfg.train.fast), 0
    lc, fast = cfg.loss, cfg.train.fast
    parts = ddl_loss(
        x_t, y, X_A[:, :, t], ya, M[:, 0, t], lam=lc.lam, eps=lc.eps, norm=lc.norm, fast=fast
    )
    return parts, masked


class CsvLog:
    """Append-only CSV; on resume, rows past ``keep_steps`` are dropped first."""

    def __init__(self, path: Path, fields: list[str], keep_steps: int | None) -> None:
        self.path, self.fields = path, fields
        rows = []
        if keep_steps is not None and path.exists():
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_steps]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        self.f = path.open("a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields)

    def write(self, row: dict) -> None:
        self.w.writerow({k: row[k] for k in self.fields})
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _setup(cfg: Config, ctx: DistContext, run_dir: Path, progress: bool, overwrite: bool = False):
    """Data (rank 0 first: it builds caches and tracks), modules, optimiser, schedule."""
    tc = cfg.train
    if not ctx.is_main:
        barrier(ctx)
    data = training_videos(cfg, progress and ctx.is_main)  # validates data before writing
    clips, info = make_clips(cfg, progress and ctx.is_main, data)
    if ctx.is_main:
        if overwrite:  # the new config and data validated: only now drop the old run
            clear_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(run_dir / CONFIG)
        barrier(ctx)
    model, creator = create_model(cfg), create_pseudo(cfg)
    net = DDLNet(model, creator, fast=tc.fast).to(ctx.device)
    net.ema = make_ema(model, tc.ema)  # before compile: the copy stays eager
    apply_speedups(model, tc)
    opt = torch.optim.Adam(param_groups(net, tc.lr, cfg.pseudo.l_lr_scale), lr=tc.lr)
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(1, int(tc.step_frac * tc.epochs)), gamma=tc.gamma
    )
    return clips, info, data, net, opt, sched


def train(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Train into ``run_dir``; returns a summary dict (also written to train_summary.json).

    The run directory is claimed first (``rundir.claim_run``: a second writer fails at once);
    a new run refuses a folder holding a run unless ``overwrite``; ``resume`` checks the
    checkpoint against ``cfg`` before anything is written. Under torchrun (WORLD_SIZE > 1)
    every rank trains on its share of each global batch; only rank 0 writes.
    """
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT
    tc = cfg.validate().train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)
    ctx = init_distributed(tc.device)
    try:
        with claim_run(run_dir, enabled=ctx.is_main):
            ck = prepare_run(cfg, run_dir, resume, overwrite, writer=ctx.is_main)
            idle = nothing_left(cfg, run_dir, ck)
            if idle:
                return {**read_summary(run_dir), "nothing_to_do": idle}
            return _train(cfg, run_dir, ckpt_path, ctx, ck, overwrite, progress and ctx.is_main)
    finally:
        shutdown(ctx)


def _train(cfg, run_dir, ckpt_path, ctx, ck, overwrite, progress) -> dict:
    tc = cfg.train
    clips, info, data, net, opt, sched = _setup(cfg, ctx, run_dir, progress, overwrite)
    model, creator = net.model, net.creator
    start = StartPoint.of(ck)
    start_epoch, step = start.epoch, start.step
    if ck is not None:
        model.load_state_dict(ck["model"])
        creator.load_state_dict(ck["creator"])
        opt.load_state_dict(ck["optim"])
        sched.load_state_dict(ck["sched"])
        if net.ema is not None and ck.get("ema"):
            net.ema.load_state_dict(ck["ema"])
        torch.set_rng_state(ck["rng"])
    resume = ck is not None
    n_batches = batches_per_epoch(len(clips), local_batch(tc.batch_size, ctx), ctx.world_size)
    ddp = DDP(net, find_unused_parameters=creator.enabled) if ctx.enabled else net
    logs = None
    if ctx.is_main:
        logs = (
            CsvLog(run_dir / TRAIN_LOG, LOG_FIELDS, step if resume else 0),
            CsvLog(run_dir / SIGMA_CSV, ["epoch", "step", "sigma"], step if resume else 0),
        )
    counts = start.counts  # cumulative over every session of the run
    t0 = time.perf_counter()
    try:
        for epoch in range(start_epoch, tc.epochs):
            skip = start.skip if epoch == start_epoch else 0
            rng_epoch, before = torch.get_rng_state(), step
            step = _run_epoch(
                cfg, ddp, creator, opt, clips, epoch, step, ctx, logs, counts, progress, skip
            )
            done = skip + step - before
            partial = done < n_batches  # stopped mid-epoch by max_steps
            if not partial:
                sched.step()
            if ctx.is_main:
                save_checkpoint(
                    ckpt_path,
                    cfg,
                    model=model,
                    creator=creator,
                    optim=opt,
                    sched=sched,
                    epoch=epoch,
                    step=step,
                    batch=done if partial else 0,
                    mask_counts=counts,
                    seconds=start.seconds + time.perf_counter() - t0,
                    sessions=start.sessions + 1,
                    **({"rng": rng_epoch} if partial else {}),  # replay this epoch's RNG
                    **({"ema": net.ema} if net.ema is not None else {}),
                )
            barrier(ctx)
            if tc.max_steps and step >= tc.max_steps:
                break
    finally:
        for log in logs or ():
            log.close()
    return _finish(cfg, run_dir, ctx, info, net, step, counts, start, t0, progress, clips, data)


def _finish(cfg, run_dir, ctx, info, net, step, counts, start, t0, progress, clips, data) -> dict:
    """train_summary.json (cumulative over sessions), threshold.json. The sigma plot is drawn
    by the callers that show results (``report.plots.plot_run_sigma``), not by the training loop."""
    model, creator = net.model, net.creator
    sigma = float(creator.sigma().detach()) if creator.enabled else None
    summary = {
        **info,
        "steps": step,
        "seconds": round(start.seconds + time.perf_counter() - t0, 1),
        "sessions": start.sessions + 1,
        "sigma": sigma,
        "mask_counts": counts,
        "params": sum(p.numel() for p in model.parameters()),
        "world_size": ctx.world_size,
    }
    if ctx.enabled:  # the learned l is one parameter: every rank must hold the same value
        per_rank: list = [None] * ctx.world_size
        torch.distributed.all_gather_object(per_rank, sigma)
        summary["sigma_per_rank"] = per_rank
    if ctx.is_main:
        atomic_write_json(run_dir / TRAIN_SUMMARY, summary)
        # BN statistics of the last (and averaged) weights on clean clips, into the checkpoint
        refresh_run(run_dir, cfg, clips)
        _, scorer = load_trained(run_dir, cfg, ctx.device)
        # threshold.json for predict, on the held-out frames this setup split off
        write_threshold(run_dir, cfg, scorer, ctx.device, videos=data.calibration)
    # the other ranks wait for rank 0's writes: a rank that tore its process group down while
    # rank 0 still held it aborted at exit now and then ("terminate called without an
    # active exception"; seen once in this session's runs of the DDP test, cause not proven)
    barrier(ctx)
    return summary


def _run_epoch(
    cfg, net, creator, opt, clips, epoch, step, ctx, logs, counts, progress, skip: int = 0
) -> int:
    """Train one epoch from its batch ``skip`` (a resume after a mid-epoch stop)."""
    tc = cfg.train
    ema = getattr(net, "module", net).ema  # under DDP, net wraps the DDLNet
    clips.set_epoch(epoch)
    # The same permutation as a single process: rank r takes every world_size-th clip, so
    # the union of the ranks' k-th batches is the single-process k-th global batch.
    sampler = DistributedSampler(
        clips,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=tc.seed * 100_003,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    b = local_batch(tc.batch_size, ctx)
    order = list(sampler)[skip * b :] if skip else sampler  # same batches as without a stop
    loader = DataLoader(
        clips, batch_size=b, sampler=order, num_workers=tc.workers, drop_last=len(sampler) > b
    )
    net.train()
    total = min(len(loader), tc.max_steps - step) if tc.max_steps else len(loader)
    desc = f"epoch {epoch + 1}/{tc.epochs}"
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)  # counts steps done
    for batch in loader:
        parts, masked = step_loss(net, creator, batch, cfg, ctx.device)
        if broadcast_flag(ctx, not bool(torch.isfinite(parts.total))):
            raise NonFiniteLoss(
                f"non-finite loss at epoch {epoch + 1}, step {step + 1} "
                f"(recon={float(parts.recon.detach())}, dist={float(parts.dist.detach())}); "
                f"the last good checkpoint is kept. Try a lower train.lr or loss.eps > 0."
            )
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        if ema is not None:
            ema.update()
        step += 1
        _count(batch["kind"], counts)
        if logs is not None:
            row = _log_row(parts, creator, opt, epoch, step, masked)
            logs[0].write(row)
            if creator.enabled:
                logs[1].write({"epoch": epoch, "step": step, "sigma": row["sigma"]})
            bar.set_postfix(recon=row["recon"], dist=row["dist"], sigma=row["sigma"])
        bar.update()
        if tc.max_steps and step >= tc.max_steps:
            break
    bar.close()
    return step


def _count(kinds: torch.Tensor, counts: dict[str, int]) -> None:
    counts["track"] += int((kinds == MASK_TRACK).sum())
    counts["random"] += int((kinds == MASK_RANDOM).sum())
    counts["none"] += int((kinds == MASK_NONE).sum())


def _log_row(parts: LossParts, creator, opt, epoch: int, step: int, masked: int) -> dict:
    sigma = float(creator.sigma().detach()) if creator.enabled else math.nan
    v = {
        k: f"{float(getattr(parts, k).detach()):.6g}" for k in ("total", "recon", "dist", "P", "N")
    }
    return {
        "epoch": epoch,
        "step": step,
        "loss": v["total"],
        "recon": v["recon"],
        "dist": v["dist"],
        "P": v["P"],
        "N": v["N"],
        "sigma": f"{sigma:.6g}",
        "lr": f"{opt.param_groups[0]['lr']:.3g}",
        "masked": masked,
    }
