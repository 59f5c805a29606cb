"""``ddlvad test``: score a labelled split with a trained run; write scores.csv + metrics.json.

scores.csv columns (stable): video, frame, raw, smoothed, label
 - raw: patch-max score of the frame; smoothed: after the median filter (and per-video
   min-max normalisation when protocol.normalize is on); label: 0/1, empty if unknown.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.config import Config, load_run_config
from ddlvad.io import atomic_write_json, atomic_write_text
from ddlvad.metrics import average_precision, eer, macro_auc, micro_auc
from ddlvad.models import model_T
from ddlvad.pipeline import load_videos, open_dataset
from ddlvad.scoring import minmax, reconstruct_video, smooth
from ddlvad.train import build_modules, pick_device

SCORE_FIELDS = ["video", "frame", "raw", "smoothed", "label"]


def load_trained(run_dir: str | Path, cfg: Config | None = None, device: str = "cpu"):
    """(cfg, model in eval mode) from a run directory's config.yaml and last checkpoint."""
    cfg = cfg or load_run_config(run_dir)
    ck = load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt", cfg)
    model, _ = build_modules(cfg)
    model.load_state_dict(ck["model"])
    return cfg, model.to(device).eval()


def score_videos(
    model, videos: dict[str, np.ndarray], cfg: Config, device
) -> dict[str, np.ndarray]:
    s = cfg.score
    T = model_T(cfg.model.name, cfg.data.T)
    return {
        name: reconstruct_video(
            model, v, T, batch_size=s.batch_size, device=device, patch=s.patch, shifted=s.shifted
        )[0]
        for name, v in videos.items()
    }


def postprocess(raw: np.ndarray, cfg: Config, normalize: bool | None = None) -> np.ndarray:
    out = smooth(raw, cfg.score.median)
    return minmax(out) if (cfg.score.normalize if normalize is None else normalize) else out


def frame_metrics(raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], cfg: Config) -> dict:
    names = [n for n in raw if n in labels]
    y = [labels[n] for n in names]
    final = [postprocess(raw[n], cfg) for n in names]
    flat_y, flat_s = np.concatenate(y), np.concatenate(final)
    return {
        "frame_auc_micro": micro_auc(y, final),
        "frame_auc_macro": macro_auc(y, final),
        "frame_auc_micro_normalized": micro_auc(y, [postprocess(raw[n], cfg, True) for n in names]),
        "frame_auc_micro_unnormalized": micro_auc(
            y, [postprocess(raw[n], cfg, False) for n in names]
        ),
        "frame_auc_micro_unsmoothed": micro_auc(y, [raw[n] for n in names]),
        "eer": eer(flat_y, flat_s),
        "ap": average_precision(flat_y, flat_s),
        "frames": int(len(flat_y)),
        "anomalous_frames": int(flat_y.sum()),
        "per_video_auc": {
            n: micro_auc([labels[n]], [f]) for n, f in zip(names, final, strict=True)
        },
    }


def scores_csv(raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], cfg: Config) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(SCORE_FIELDS)
    for name, r in raw.items():
        sm = postprocess(r, cfg)
        lab = labels.get(name)
        for i in range(len(r)):
            w.writerow([name, i, f"{r[i]:.6g}", f"{sm[i]:.6g}", "" if lab is None else int(lab[i])])
    return buf.getvalue()


def protocol(cfg: Config) -> dict[str, Any]:
    return {
        **asdict(cfg.score),
        "T": cfg.data.T,
        "size": [cfg.data.height, cfg.data.width],
        "channels": cfg.data.channels,
        "edge_rule": "edge frames are scored with clamped (replicated) neighbour frames",
    }


def evaluate(run_dir: str | Path, cfg: Config | None = None, *, progress: bool = True) -> dict:
    """Score the test split of the run's dataset; write scores.csv and metrics.json."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.train.device if cfg else "auto")
    cfg, model = load_trained(run_dir, cfg, device)
    ds = open_dataset(cfg)
    if not ds.test:
        raise ValueError(f"{cfg.data.root}: no test videos to score")
    videos = load_videos(ds.test, cfg, progress)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    if not labels:
        raise ValueError(f"{cfg.data.root}: test split has no labels; use `ddlvad predict`")
    with torch.inference_mode():
        raw = score_videos(model, videos, cfg, device)
    metrics = frame_metrics(raw, labels, cfg)
    metrics["protocol"] = protocol(cfg)
    atomic_write_text(run_dir / "scores.csv", scores_csv(raw, labels, cfg))
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics
