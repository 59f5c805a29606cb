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
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ddlvad.checkpoint import load_checkpoint, save_checkpoint
from ddlvad.config import Config
from ddlvad.data.clips import MASK_NONE, MASK_RANDOM, MASK_TRACK, TrainClips
from ddlvad.io import atomic_write_json
from ddlvad.loss import LossParts, ddl_loss
from ddlvad.models import build_model, model_T
from ddlvad.objects.masks import MaskPicker
from ddlvad.pipeline import load_videos, open_dataset, train_tracks
from ddlvad.pseudo import PseudoAnomalyCreator
from ddlvad.viz import plot_sigma_trajectory

LOG_FIELDS = ["epoch", "step", "loss", "recon", "dist", "P", "N", "sigma", "lr", "masked"]


class NonFiniteLoss(RuntimeError):
    """Training produced NaN/inf; the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_modules(cfg: Config) -> tuple[torch.nn.Module, PseudoAnomalyCreator]:
    m = cfg.model
    model = build_model(
        m.name,
        C=cfg.data.channels,
        T=model_T(m.name, cfg.data.T),
        latent=m.latent,
        kernels=m.kernels,
        final_kernel=m.final_kernel,
    )
    p = cfg.pseudo
    return model, PseudoAnomalyCreator(p.mode, sigma=p.sigma, l_init=p.l_init)


def make_clips(cfg: Config, progress: bool) -> tuple[TrainClips, dict]:
    ds = open_dataset(cfg)
    videos = load_videos(ds.train, cfg, progress)
    T = model_T(cfg.model.name, cfg.data.T)
    info: dict[str, Any] = {"train_videos": len(videos)}
    picker = None
    if cfg.pseudo.mode != "none":
        tracks, meta, path = train_tracks(ds.train, videos, cfg, progress)
        picker = MaskPicker(tracks, cfg.pseudo.no_track)
        lengths = {k: len(v) for k, v in videos.items()}
        info.update(
            tracks=str(path),
            boxes_per_frame=meta.get("boxes_per_frame"),
            full_track_share=picker.coverage(lengths, T),
        )
    clips = TrainClips(list(videos.values()), T, picker, names=list(videos), seed=cfg.train.seed)
    info["clips"] = len(clips)
    return clips, info


def step_loss(model, creator, batch, cfg: Config, device) -> tuple[LossParts, int]:
    """One forward of eqs (1)-(7) on a batch; returns the loss parts and #masked clips."""
    X = batch["X"].to(device)  # (B, C, T, H, W)
    t = X.shape[2] // 2
    x_t = X[:, :, t]  # (B, C, H, W): the frame to reconstruct
    y = model(X)
    masked = int((batch["kind"] != MASK_NONE).sum())
    if not creator.enabled or masked == 0:
        return ddl_loss(x_t, y), 0
    M = batch["M"].to(device)  # (B, 1, T, H, W)
    X_A = creator(X, M)
    ya = model(X_A)
    parts = ddl_loss(
        x_t, y, X_A[:, :, t], ya, M[:, 0, t], lam=cfg.loss.lam, eps=cfg.loss.eps, norm=cfg.loss.norm
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


def train(cfg: Config, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train into ``run_dir``; returns a summary dict (also written to train_summary.json)."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    tc = cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)
    device = pick_device(tc.device)
    clips, info = make_clips(cfg, progress)  # validates the data before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(run_dir / "config.yaml")
    model, creator = build_modules(cfg)
    model.to(device)
    creator.to(device)
    params = list(model.parameters()) + list(creator.parameters())
    opt = torch.optim.Adam(params, lr=tc.lr)
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(1, int(tc.step_frac * tc.epochs)), gamma=tc.gamma
    )
    start_epoch, step = 0, 0
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, cfg)
        model.load_state_dict(ck["model"])
        creator.load_state_dict(ck["creator"])
        opt.load_state_dict(ck["optim"])
        sched.load_state_dict(ck["sched"])
        start_epoch, step = ck["epoch"] + 1, ck["step"]
        torch.set_rng_state(ck["rng"])
    log = CsvLog(run_dir / "train_log.csv", LOG_FIELDS, step if resume else 0)
    slog = CsvLog(run_dir / "sigma.csv", ["epoch", "step", "sigma"], step if resume else 0)
    counts = {"track": 0, "random": 0, "none": 0}
    t0 = time.perf_counter()
    try:
        for epoch in range(start_epoch, tc.epochs):
            step = _run_epoch(
                cfg, model, creator, opt, clips, epoch, step, device, log, slog, counts, progress
            )
            sched.step()
            save_checkpoint(
                ckpt_path,
                cfg,
                model=model,
                creator=creator,
                optim=opt,
                sched=sched,
                epoch=epoch,
                step=step,
            )
            if tc.max_steps and step >= tc.max_steps:
                break
    finally:
        log.close()
        slog.close()
    summary = {
        **info,
        "steps": step,
        "seconds": round(time.perf_counter() - t0, 1),
        "sigma": float(creator.sigma().detach()) if creator.enabled else None,
        "mask_counts": counts,
        "params": sum(p.numel() for p in model.parameters()),
    }
    atomic_write_json(run_dir / "train_summary.json", summary)
    if creator.mode == "dynamic" and step > 0:
        plot_sigma_trajectory(run_dir / "sigma.csv", run_dir / "plots" / "sigma_trajectory.png")
    return summary


def _run_epoch(
    cfg, model, creator, opt, clips, epoch, step, device, log, slog, counts, progress
) -> int:
    tc = cfg.train
    clips.set_epoch(epoch)
    g = torch.Generator().manual_seed(tc.seed * 100_003 + epoch)
    loader = DataLoader(
        clips,
        batch_size=tc.batch_size,
        shuffle=True,
        generator=g,
        num_workers=tc.workers,
        drop_last=len(clips) > tc.batch_size,
    )
    model.train()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not progress, leave=False)
    for batch in bar:
        parts, masked = step_loss(model, creator, batch, cfg, device)
        if not torch.isfinite(parts.total):
            raise NonFiniteLoss(
                f"non-finite loss at epoch {epoch + 1}, step {step + 1} "
                f"(recon={float(parts.recon)}, dist={float(parts.dist)}); the last good "
                f"checkpoint is kept. Try a lower train.lr or loss.eps > 0."
            )
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        step += 1
        kinds = batch["kind"]
        counts["track"] += int((kinds == MASK_TRACK).sum())
        counts["random"] += int((kinds == MASK_RANDOM).sum())
        counts["none"] += int((kinds == MASK_NONE).sum())
        sigma = float(creator.sigma().detach()) if creator.enabled else math.nan
        v = {
            k: f"{float(getattr(parts, k).detach()):.6g}"
            for k in ("total", "recon", "dist", "P", "N")
        }
        row = {
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
        log.write(row)
        if creator.enabled:
            slog.write({"epoch": epoch, "step": step, "sigma": row["sigma"]})
        bar.set_postfix(recon=row["recon"], dist=row["dist"], sigma=row["sigma"])
        if tc.max_steps and step >= tc.max_steps:
            break
    return step
