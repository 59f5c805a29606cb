"""``ddlvad test``: score a labelled split with a trained run; write scores.csv + metrics.json.

scores.csv columns (stable, in this order): video, frame, raw, smoothed, label
 - video: the test video's name; frame: 0-based frame index within the video;
 - raw: patch-max score of the frame (before any filtering);
 - smoothed: the final score: median filter (``score.median``), then per-video min-max when
   ``score.normalize`` is on; label: 0/1 ground truth, empty if unknown.

metrics.json keys:
 - frame_auc_micro: ROC AUC over all frames pooled, on the final (smoothed) scores;
 - frame_auc_macro: mean per-video AUC over videos holding both classes (``macro_videos``);
 - frame_auc_micro_normalized / _unnormalized: micro AUC with / without per-video min-max;
 - frame_auc_micro_unsmoothed: micro AUC on the raw scores;
 - eer, ap: equal error rate and average precision on the final scores, frames pooled;
 - pixel_auc: pixel ROC AUC over videos with pixel masks (null when none has masks);
   pixel_auc_pixels / pixel_auc_anomalous_pixels / pixel_auc_videos: what it was computed on;
 - frames, anomalous_frames, videos, macro_videos, per_video_auc;
 - protocol: every scoring choice (patch, shifted, median, normalize, edge, pixel_stride...);
 - checkpoint: the checkpoint scored (file, epoch, step, sha256), also in scores.csv.json;
 - scores_sha256: the sha256 of the scores.csv written with it, also in scores.csv.json.
Undefined values (NaN, e.g. an AUC with one class) are written as null.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlvad.config import Config
from ddlvad.data.layouts import VideoRecord, load_pixel_masks
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.rundir import claim_run, load_trained, pick_device
from ddlvad.scoring.gain import Gain, gain_for_run
from ddlvad.scoring.metrics import (
    MACRO_RULE,
    PixelAUC,
    average_precision,
    eer,
    macro_auc,
    macro_videos,
    micro_auc,
)
from ddlvad.scoring.outputs import publish
from ddlvad.scoring.protocol import EDGE_RULES, check_edge, postprocess
from ddlvad.scoring.reconstruct import reconstruct_video, score_kwargs

SCORE_FIELDS = ["video", "frame", "raw", "smoothed", "label"]
# Pixel AUC keeps every 2nd row and column of each error map (a fixed grid): a quarter of the
# pixels, so a long dataset's pooled maps stay small; 1 = every pixel.
PIXEL_STRIDE = 2


def score_split(
    model,
    records: list[VideoRecord],
    videos: dict[str, np.ndarray],
    cfg: Config,
    device,
    pixel_stride: int = PIXEL_STRIDE,
    gain: Gain | None = None,
) -> tuple[dict[str, np.ndarray], PixelAUC]:
    """Raw frame scores per video, plus pixel-AUC pixels from videos that ship pixel masks.

    Error maps are kept for one masked video at a time and subsampled at once."""
    d = cfg.data
    T, kw = cfg.model_T, score_kwargs(cfg)
    raw: dict[str, np.ndarray] = {}
    acc = PixelAUC(pixel_stride)
    for rec in records:
        masks = load_pixel_masks(rec, d.height, d.width)
        raw[rec.name], maps = reconstruct_video(
            model, videos[rec.name], T, device=device, keep_maps=masks is not None, gain=gain, **kw
        )
        if masks is not None:
            acc.add(masks, maps)
    return raw, acc


def read_scores_csv(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """scores.csv -> {video: {"frame", "raw", "smoothed", "label"}} (label -1 where unknown)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no scores.csv; run `ddlvad test` first")
    rows: dict[str, list[list[float]]] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != SCORE_FIELDS:
            raise ValueError(f"{path}: expected columns {SCORE_FIELDS}, got {reader.fieldnames}")
        for r in reader:
            lab = float(r["label"]) if r["label"] != "" else -1.0
            rows.setdefault(r["video"], []).append(
                [float(r["frame"]), float(r["raw"]), float(r["smoothed"]), lab]
            )
    out = {}
    for name, vals in rows.items():
        a = np.asarray(vals)
        out[name] = {
            "frame": a[:, 0].astype(int),
            "raw": a[:, 1],
            "smoothed": a[:, 2],
            "label": a[:, 3].astype(int),
        }
    return out


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
        "videos": len(names),
        "macro_videos": macro_videos(y),
        "per_video_auc": {
            n: micro_auc([labels[n]], [f]) for n, f in zip(names, final, strict=True)
        },
    }


def pixel_metrics(acc: PixelAUC, videos: int) -> dict[str, Any]:
    """pixel_auc is None when no test video ships pixel masks."""
    has = acc.pixels > 0
    return {
        "pixel_auc": acc.value() if has else None,
        "pixel_auc_pixels": acc.pixels,
        "pixel_auc_anomalous_pixels": acc.anomalous_pixels,
        "pixel_auc_videos": videos,
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


def protocol(cfg: Config, pixel_stride: int = PIXEL_STRIDE) -> dict[str, Any]:
    """Every choice that changes the numbers, as recorded in metrics.json."""
    check_edge(cfg.score.edge)
    if cfg.score.median < 0 or pixel_stride < 1:
        raise ValueError(
            f"score.median must be >= 0 (0 = off) and the pixel stride >= 1, "
            f"got {cfg.score.median} and {pixel_stride}"
        )
    return {
        **asdict(cfg.score),
        "T": cfg.data.T,
        "size": [cfg.data.height, cfg.data.width],
        "channels": cfg.data.channels,
        "frame_score": "max over patch x patch means of the per-pixel L2 error over channels"
        + (" (plain and patch/2-shifted grids)" if cfg.score.shifted else " (plain grid)"),
        "edge_rule": EDGE_RULES[cfg.score.edge],
        "macro_rule": MACRO_RULE,
        "pixel_stride": pixel_stride,
        "pixel_rule": "ROC AUC pooled over pixels of all frames of the test videos with pixel "
        "masks, at the working size; score = per-pixel error map (unsmoothed); "
        + (
            "every pixel"
            if pixel_stride == 1
            else f"rows and columns 0, {pixel_stride}, {2 * pixel_stride}, ... only"
        ),
    }


def evaluate(
    run_dir: str | Path,
    cfg: Config | None = None,
    *,
    progress: bool = True,
    pixel_stride: int = PIXEL_STRIDE,
) -> dict:
    """Score the test split of the run's dataset; write scores.csv and metrics.json.

    Holds the run's lock throughout (``rundir.claim_run``: not while another process trains
    or tests the run) and publishes the outputs together (``scoring.outputs``)."""
    run_dir = Path(run_dir)
    with claim_run(run_dir):
        return _evaluate(run_dir, cfg, progress, pixel_stride)


def _evaluate(run_dir: Path, cfg: Config | None, progress: bool, pixel_stride: int) -> dict:
    device = pick_device(cfg.train.device if cfg else "auto")
    ckpt: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, cfg, device, info=ckpt)
    cfg.validate()
    protocol(cfg, pixel_stride)  # reject a bad protocol before scoring
    gain = gain_for_run(run_dir, cfg)
    ds = open_dataset(cfg)
    if not ds.test:
        raise ValueError(f"{cfg.data.root}: no test videos to score")
    videos = load_videos(ds.test, cfg, progress)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    if not labels:
        raise ValueError(f"{cfg.data.root}: test split has no labels; use `ddlvad predict`")
    with torch.inference_mode():
        raw, acc = score_split(model, ds.test, videos, cfg, device, pixel_stride, gain)
    metrics = frame_metrics(raw, labels, cfg)
    metrics.update(pixel_metrics(acc, sum(r.has_masks for r in ds.test)))
    metrics["protocol"] = protocol(cfg, pixel_stride)
    metrics["checkpoint"] = ckpt
    sidecar = {"checkpoint": ckpt, "protocol": metrics["protocol"], "written_by": "ddlvad test"}
    publish(run_dir, scores_csv(raw, labels, cfg), sidecar, metrics)
    return metrics
