"""Per-step logs: train_log.csv and sigma.csv, appended one row a step and flushed."""

from __future__ import annotations

import contextlib
import csv
import math
from pathlib import Path

import torch

from ddlvad.io import naming
from ddlvad.objects.masks import MASK_NONE, MASK_RANDOM, MASK_TRACK
from ddlvad.train.loss import LossParts

LOG_FIELDS = ["epoch", "step", "loss", "recon", "dist", "P", "N", "sigma", "lr", "masked"]


class CsvLog:
    """Append-only CSV; on resume, rows past ``keep_steps`` are dropped first."""

    def __init__(self, path: Path, fields: list[str], keep_steps: int | None) -> None:
        self.path, self.fields = path, fields
        rows = []
        if keep_steps is not None and path.exists():
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_steps]
        with naming(path), path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        self.f = path.open("a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields)

    def write(self, row: dict) -> None:
        with naming(self.path):
            self.w.writerow({k: row[k] for k in self.fields})
            self.f.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk was reported by write already
            self.f.close()


def count_kinds(kinds: torch.Tensor, counts: dict[str, int]) -> None:
    counts["track"] += int((kinds == MASK_TRACK).sum())
    counts["random"] += int((kinds == MASK_RANDOM).sum())
    counts["none"] += int((kinds == MASK_NONE).sum())


def log_row(parts: LossParts, creator, opt, epoch: int, step: int, masked: int) -> dict:
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
