"""Training loop: Adam + StepLR, DDL loss, per-step logs, atomic checkpoints, resume.

Repeatability: the shuffle order and pseudo-anomaly masks depend on (seed, epoch) only, and
the torch RNG state is saved with every checkpoint, so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

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
from ddlvad.models import create_model, create_pseudo
from ddlvad.models.blocks import set_fast_path
from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.objects.masks import MASK_NONE
from ddlvad.rundir import (
    CHECKPOINT,
    CONFIG,
    SIGMA_CSV,
    TRAIN_LOG,
    claim_run,
    clear_run,
    read_summary,
)
from ddlvad.scoring import threads
from ddlvad.train.data import make_clips, training_videos
from ddlvad.train.distributed import (
    DistContext,
    barrier,
    broadcast_flag,
    init_distributed,
    local_batch,
    shutdown,
)
from ddlvad.train.ema import make_ema
from ddlvad.train.finish import drop_finish_outputs, finish_run, run_summary
from ddlvad.train.logs import LOG_FIELDS, CsvLog, count_kinds, log_row
from ddlvad.train.loss import LossParts, ddl_loss
from ddlvad.train.resume import (
    FINISH_STEPS,
    StartPoint,
    batches_per_epoch,
    finish_todo,
    nothing_left,
    prepare_run,
)
from ddlvad.train.stops import (
    NonFiniteLoss,
    Progress,
    TrainingStopped,
    non_finite,
    stopped_line,
)


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

    def __init__(
        self,
        model: nn.Module,
        creator: PseudoAnomalyCreator,
        fast: bool = True,
        precise_bn: bool = True,
    ) -> None:
        super().__init__()
        self.model, self.creator = model, creator
        set_fast_path(model, fast, precise_bn)
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


def _setup(cfg: Config, ctx: DistContext, progress: bool):
    """Data (rank 0 first: it builds caches and tracks), modules, optimiser, schedule; all
    built before the run directory is written."""
    tc = cfg.train
    if not ctx.is_main:
        barrier(ctx)
    data = training_videos(cfg, progress and ctx.is_main)  # validates data before writing
    clips, info = make_clips(cfg, progress and ctx.is_main, data)
    if ctx.is_main:
        barrier(ctx)
    model, creator = create_model(cfg), create_pseudo(cfg)
    net = DDLNet(model, creator, fast=tc.fast, precise_bn=tc.precise_bn).to(ctx.device)
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
    checkpoint against ``cfg`` before anything is written, and finishes the end-of-training
    steps of a run stopped during them. Under torchrun (WORLD_SIZE > 1) every rank trains on
    its share of each global batch; only rank 0 writes. SIGINT (and SIGTERM, as
    ``Terminated``) raise ``TrainingStopped``, saying where a resume goes on.
    """
    run_dir = Path(run_dir)
    tc = cfg.validate().train
    threads.govern(tc.threads)  # 0: the free cores, re-checked while training (scoring.threads)
    seed_everything(tc.seed)
    ctx = init_distributed(tc.device)
    where = Progress()
    try:
        with claim_run(run_dir, enabled=ctx.is_main):
            ck = prepare_run(cfg, run_dir, resume, overwrite, writer=ctx.is_main)
            idle = nothing_left(cfg, run_dir, ck)
            todo = finish_todo(run_dir, ck) if idle else FINISH_STEPS
            if not todo:
                return {**read_summary(run_dir), "nothing_to_do": idle}
            where.saved = StartPoint.of(ck).step if ck else None
            where.step = where.saved or 0
            plan = (overwrite, progress and ctx.is_main, bool(idle), todo)
            summary = _train(cfg, run_dir, ctx, ck, plan, where)
            return {**summary, **({"finished": todo} if idle else {})}
    except KeyboardInterrupt as e:
        raise TrainingStopped(stopped_line(run_dir, where, e)) from None
    finally:
        shutdown(ctx)


def _restore(net: DDLNet, opt, sched, ck: dict) -> None:
    """Weights, optimiser, schedule, EMA and RNG state from a checkpoint."""
    net.model.load_state_dict(ck["model"])
    net.creator.load_state_dict(ck["creator"])
    opt.load_state_dict(ck["optim"])
    sched.load_state_dict(ck["sched"])
    if net.ema is not None and ck.get("ema"):
        net.ema.load_state_dict(ck["ema"])
    torch.set_rng_state(ck["rng"])


def _train(cfg, run_dir, ctx, ck, plan: tuple, where: Progress) -> dict:
    """Train what is left (nothing when ``idle``: only end-of-training steps are), then
    run the end-of-training steps ``todo``."""
    overwrite, progress, idle, todo = plan
    clips, info, data, net, opt, sched = _setup(cfg, ctx, progress)
    start = StartPoint.of(ck)
    if ck is not None:
        _restore(net, opt, sched, ck)
    totals = start
    if not idle:
        if ctx.is_main:
            if overwrite:  # the new config, data and modules built: only now drop the old run
                clear_run(run_dir)
            cfg.dump(run_dir / CONFIG)
        totals = _fit(cfg, run_dir, ctx, ck, net, opt, sched, clips, start, progress, where)
    where.finishing = True
    summary = run_summary(info, net, totals, ctx)
    return finish_run(cfg, run_dir, ctx, summary, clips, data, todo, progress)


def _save(cfg, run_dir: Path, ctx, net: DDLNet, opt, sched, where: Progress, **meta) -> None:
    """checkpoints/last.pt (rank 0), unless a weight or statistic is not finite: then
    NonFiniteLoss, and the checkpoint on disk (the last finite one) stays."""
    bad = non_finite(net) + (non_finite(net.ema.module) if net.ema is not None else [])
    if broadcast_flag(ctx, bool(bad)):
        raise NonFiniteLoss(f"non-finite weights after step {meta['step']} ({', '.join(bad[:3])})")
    if ctx.is_main:
        drop_finish_outputs(run_dir)  # they belong to the weights being replaced
        extra = {"ema": net.ema} if net.ema is not None else {}
        save_checkpoint(
            run_dir / CHECKPOINT, cfg, model=net.model, creator=net.creator, optim=opt,
            sched=sched, **meta, **extra,
        )  # fmt: skip
    where.saved = meta["step"]
    barrier(ctx)


def _fit(cfg, run_dir, ctx, ck, net, opt, sched, clips, start, progress, where) -> StartPoint:
    """The epochs left, a checkpoint after each (and at step 0 of a new run); the totals."""
    tc = cfg.train
    step, counts, t0 = start.step, start.counts, time.perf_counter()  # counts: every session
    n_batches = batches_per_epoch(len(clips), local_batch(tc.batch_size, ctx), ctx.world_size)
    ddp = DDP(net, find_unused_parameters=net.creator.enabled) if ctx.enabled else net
    logs = None
    if ctx.is_main:
        logs = tuple(
            CsvLog(run_dir / name, fields, step)
            for name, fields in ((TRAIN_LOG, LOG_FIELDS), (SIGMA_CSV, ["epoch", "step", "sigma"]))
        )

    def totals() -> StartPoint:
        seconds = start.seconds + time.perf_counter() - t0
        return StartPoint(step=step, seconds=seconds, sessions=start.sessions + 1, counts=counts)

    try:
        if ck is None:  # a resume always has a checkpoint to go on from
            _save(cfg, run_dir, ctx, net, opt, sched, where, **_meta(0, 0, 0, totals()))
        for epoch in range(start.epoch, tc.epochs):
            skip = start.skip if epoch == start.epoch else 0
            rng_epoch, before = torch.get_rng_state(), step
            step = _run_epoch(
                cfg, ddp, net.creator, opt, clips, epoch, step, ctx, logs, counts, progress,
                skip, where,
            )  # fmt: skip
            done = skip + step - before
            partial = done < n_batches  # stopped mid-epoch by max_steps
            if not partial:
                sched.step()
            meta = _meta(epoch, step, done if partial else 0, totals())
            rng = {"rng": rng_epoch} if partial else {}  # replay this epoch's RNG
            _save(cfg, run_dir, ctx, net, opt, sched, where, **meta, **rng)
            if tc.max_steps and step >= tc.max_steps:
                break
    except NonFiniteLoss as e:
        kept = f"{CHECKPOINT} keeps step {where.saved}, the last finite weights"
        raise NonFiniteLoss(
            f"{run_dir}: training diverged: {e}; {kept}; try a lower train.lr or loss.eps > 0"
        ) from None
    finally:
        for log in logs or ():
            log.close()
    return totals()


def _meta(epoch: int, step: int, batch: int, totals: StartPoint) -> dict:
    """A checkpoint's position and the totals over every session of the run."""
    return {
        "epoch": epoch,
        "step": step,
        "batch": batch,
        "mask_counts": totals.counts,
        "seconds": totals.seconds,
        "sessions": totals.sessions,
    }


def _run_epoch(
    cfg, net, creator, opt, clips, epoch, step, ctx, logs, counts, progress, skip, where
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
                f"(recon={float(parts.recon.detach())}, dist={float(parts.dist.detach())})"
            )
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        if ema is not None:
            ema.update()
        step += 1
        where.step = step
        threads.tick()
        count_kinds(batch["kind"], counts)
        if logs is not None:
            row = log_row(parts, creator, opt, epoch, step, masked)
            logs[0].write(row)
            if creator.enabled:
                logs[1].write({"epoch": epoch, "step": step, "sigma": row["sigma"]})
            bar.set_postfix(recon=row["recon"], dist=row["dist"], sigma=row["sigma"])
        bar.update()
        if tc.max_steps and step >= tc.max_steps:
            break
    bar.close()
    return step
