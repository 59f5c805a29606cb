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
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ddlvad.config import Config
from ddlvad.data.layouts import VideoRecord, load_pixel_masks
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.rundir import CONFIG, claim_run, load_trained, pick_device, warn_if_unfinished
from ddlvad.scoring.backends import TorchForward
from ddlvad.scoring.engine import ScoreEngine, engine_for_run
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
from ddlvad.scoring.post import ScorePipeline
from ddlvad.scoring.protocol import EDGE_RULES, ScoreProtocol

SCORE_FIELDS = ["video", "frame", "raw", "smoothed", "label"]
# Pixel AUC keeps every 2nd row and column of each error map (a fixed grid): a quarter of the
# pixels, so a long dataset's pooled maps stay small; 1 = every pixel.
PIXEL_STRIDE = 2


def score_split(
    engine: ScoreEngine,
    records: list[VideoRecord],
    videos: dict[str, np.ndarray],
    size: tuple[int, int],
    pixel_stride: int = PIXEL_STRIDE,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], PixelAUC]:
    """Raw frame scores per video, plus pixel-AUC pixels from videos that ship pixel masks
    (at the working ``size``, (H, W)); a progress bar over the frames when ``progress``.

    Error maps are kept for one masked video at a time and subsampled at once."""
    raw: dict[str, np.ndarray] = {}
    acc = PixelAUC(pixel_stride)
    total = sum(len(videos[r.name]) for r in records)
    bar = tqdm(total=total, desc="scoring", unit="frame", disable=not progress, leave=False)
    with bar:
        for rec in records:
            masks = load_pixel_masks(rec, *size)
            video = videos[rec.name]
            raw[rec.name], maps = engine.score_video(video, keep_maps=masks is not None)
            if masks is not None:
                acc.add(masks, maps)
            bar.update(len(video))
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


def frame_metrics(
    raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], post: ScorePipeline
) -> dict:
    """The frame-level metrics of raw scores post-processed by ``post`` (an engine's)."""
    names = [n for n in raw if n in labels]
    y = [labels[n] for n in names]
    final = [post.final(raw[n]) for n in names]
    flat_y, flat_s = np.concatenate(y), np.concatenate(final)
    return {
        "frame_auc_micro": micro_auc(y, final),
        "frame_auc_macro": macro_auc(y, final),
        "frame_auc_micro_normalized": micro_auc(y, [post.final(raw[n], True) for n in names]),
        "frame_auc_micro_unnormalized": micro_auc(y, [post.final(raw[n], False) for n in names]),
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


def scores_csv(
    raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], post: ScorePipeline
) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(SCORE_FIELDS)
    for name, r in raw.items():
        sm = post.final(r)
        lab = labels.get(name)
        for i in range(len(r)):
            w.writerow([name, i, f"{r[i]:.6g}", f"{sm[i]:.6g}", "" if lab is None else int(lab[i])])
    return buf.getvalue()


def protocol_record(
    cfg: Config,
    protocol: ScoreProtocol,
    pixel_stride: int = PIXEL_STRIDE,
    used: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every choice that changes the numbers, as recorded under ``protocol`` in metrics.json:
    the protocol's record, then what else the scores depend on and the rules in words.
    ``used``: the checkpoint record of ``load_trained``, whose ``weights`` and ``bn`` say
    what was scored (the config asks for the EMA, but a run without one scores the last
    weights); without it, what the config asks for."""
    if pixel_stride < 1:
        raise ValueError(f"the pixel stride must be >= 1, got {pixel_stride}")
    s, used = cfg.score, used or {}
    return {
        **protocol.record(),
        "batch_size": s.batch_size,
        "weights": used.get("weights", s.weights),
        "bn": used.get("bn", s.bn),
        "T": cfg.data.T,
        "size": [cfg.data.height, cfg.data.width],
        "channels": cfg.data.channels,
        "frame_score": "max over patch x patch means of the per-pixel L2 error over channels"
        + (" (plain and patch/2-shifted grids)" if protocol.shifted else " (plain grid)"),
        "edge_rule": EDGE_RULES[protocol.edge],
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
    protocol: ScoreProtocol | None = None,
    progress: bool = True,
    pixel_stride: int = PIXEL_STRIDE,
) -> dict:
    """Score the test split of the run's dataset under ``protocol`` (default: the config's
    ``score.*``); write scores.csv and metrics.json.

    Holds the run's lock throughout (``rundir.claim_run``: not while another process trains
    or tests the run) and publishes the outputs together (``scoring.outputs``)."""
    run_dir = Path(run_dir)
    with claim_run(run_dir):
        warn_if_unfinished(run_dir)
        return _evaluate(run_dir, cfg, protocol, progress, pixel_stride)


def _evaluate(
    run_dir: Path,
    cfg: Config | None,
    protocol: ScoreProtocol | None,
    progress: bool,
    pixel_stride: int,
) -> dict:
    device = pick_device(cfg.train.device if cfg else "auto")
    ckpt: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, cfg, device, info=ckpt)
    cfg.validate()
    protocol = protocol or ScoreProtocol.from_config(cfg)
    record = protocol_record(cfg, protocol, pixel_stride, ckpt)  # a bad one fails first
    forward = TorchForward(model, "fp32", device)  # fp32: the reference scores
    engine = engine_for_run(
        run_dir, protocol, forward, cfg.model_T, batch_size=cfg.score.batch_size
    )
    if not cfg.data.root:
        raise ValueError(
            f"{run_dir / CONFIG}: names no dataset to test on (data.root is empty, as in a "
            f"shipped model's copy); give the labelled test data with --root DIR (and --data "
            f"NAME), or data.root in Python"
        )
    ds = open_dataset(cfg)
    if not ds.test:
        raise ValueError(
            f"{cfg.data.root}: no test videos to score (layout {cfg.data.layout}); "
            f"`ddlvad info --root {cfg.data.root}` shows what it holds"
        )
    videos = load_videos(ds.test, cfg, progress)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    if not labels:
        raise ValueError(f"{cfg.data.root}: test split has no labels; use `ddlvad predict`")
    size = (cfg.data.height, cfg.data.width)
    raw, acc = score_split(engine, ds.test, videos, size, pixel_stride, progress)
    metrics = frame_metrics(raw, labels, engine.pipeline)
    metrics.update(pixel_metrics(acc, sum(r.has_masks for r in ds.test)))
    metrics["protocol"] = record
    metrics["checkpoint"] = ckpt
    sidecar = {"checkpoint": ckpt, "protocol": metrics["protocol"], "written_by": "ddlvad test"}
    publish(run_dir, scores_csv(raw, labels, engine.pipeline), sidecar, metrics)
    return metrics
