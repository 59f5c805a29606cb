"""The health of a trained model from normal footage only (``ddlvad check``).

The model scores synthetic test videos made from its own training footage (``synthetic``:
noise, pasted squares, fast motion) under the run's scoring protocol, and the health is the
micro AUC of their labels pooled over every video and kind. It falls both when anomalies
are reconstructed too well and when normal scores drift between videos: the two ways a real
test AUC is lost. 0.5 is chance, 1.0 a perfect separation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ddlvad.config import Config
from ddlvad.health.synthetic import KINDS, Synthetic, frames_needed, synthesize
from ddlvad.scoring.metrics import auc, micro_auc

BUDGET = 2400  # frames scored in all (80-130 s on one core for Ped2 at the cpu preset)
LENGTHS = (12, 120)  # frames per synthetic video, at least and at most


def stretch_length(n: int, want: int) -> int:
    """The longest stretch up to ``want`` frames that a video of ``n`` frames can give, or
    0 when even the shortest does not fit."""
    for length in range(min(want, LENGTHS[1]), LENGTHS[0] - 1, -1):
        if frames_needed(length) <= n:
            return length
    return 0


def synthetic_set(
    videos: dict[str, np.ndarray], budget: int = BUDGET, seed: int = 0
) -> list[Synthetic]:
    """One synthetic video of each kind per normal video, about ``budget`` frames in all."""
    if not videos:
        raise ValueError("no normal footage to make synthetic anomalies from")
    want = max(budget // (len(videos) * len(KINDS)), LENGTHS[0])
    rng = np.random.default_rng(seed)
    out = []
    for name, v in videos.items():
        length = stretch_length(len(v), want)
        if length:
            out += [synthesize(v, kind, length, rng, name) for kind in KINDS]
    if not out:
        need = frames_needed(LENGTHS[0])
        raise ValueError(f"every normal video is shorter than the {need} frames a check needs")
    return out


def health_of(scores: list[np.ndarray], synth: list[Synthetic]) -> dict[str, Any]:
    """The health record of alert scores (one array per synthetic video, in order)."""
    labels = [s.labels for s in synth]
    per_kind = {
        k: micro_auc([s.labels for s in synth if s.kind == k],
                     [x for x, s in zip(scores, synth, strict=True) if s.kind == k])
        for k in KINDS
    }  # fmt: skip
    normal = [x[s.labels == 0] for x, s in zip(scores, synth, strict=True)]
    means = np.array([n.mean() for n in normal])
    inside = [auc(s.labels, x) for x, s in zip(scores, synth, strict=True)]
    return {
        "health": micro_auc(labels, scores),
        "kinds": per_kind,
        "within_video": float(np.nanmean(inside)),
        # how far normal scores drift between videos, against their spread inside one
        "drift": float(means.std() / (np.mean([n.std() for n in normal]) + 1e-12)),
        "videos": len({s.source for s in synth}),
        "frames": int(sum(len(s.labels) for s in synth)),
    }


def check_run(
    run_dir: str | Path,
    cfg: Config | None = None,
    *,
    budget: int = BUDGET,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The health record of a run (``health_of``) from its own normal footage: the held-out
    tails of its training videos when it kept some, else the training frames."""
    from ddlvad.rundir import load_trained, pick_device
    from ddlvad.scoring.backends import TorchForward
    from ddlvad.scoring.engine import engine_for_run
    from ddlvad.scoring.protocol import ScoreProtocol
    from ddlvad.train.data import training_videos

    t0 = time.perf_counter()
    device = pick_device(cfg.train.device if cfg else "auto")
    cfg, model = load_trained(run_dir, cfg, device)
    protocol = ScoreProtocol.from_config(cfg).replace(normalize=False)
    engine = engine_for_run(
        run_dir, protocol, TorchForward(model, "fp32", device), cfg.model_T,
        batch_size=cfg.score.batch_size,
    )  # fmt: skip
    synth = synthetic_set(training_videos(cfg, progress).calibration, budget, seed)
    scores = [engine.pipeline.alert(engine.score_video(s.frames)[0]) for s in synth]
    record = health_of(scores, synth)
    record["verdict"], record["advice"] = verdict(record)
    record.update(seconds=round(time.perf_counter() - t0, 1), budget=budget, seed=seed)
    return record


def short(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a health record that train_summary.json, cards and reports carry."""
    keys = ("health", "verdict", "kinds", "drift")
    return {k: record[k] for k in keys if k in record}


# Verdict bands of the health (see docs/results.md, "Health without labels", for the runs
# they were read from).
HEALTHY, DOUBTFUL = 0.95, 0.90


def verdict(record: dict[str, Any]) -> tuple[str, str]:
    """(verdict, what to do) of a health record."""
    h = record["health"]
    if h >= HEALTHY:
        return "healthy", "synthetic anomalies stand out from normal footage; deploy and watch"
    what = "train another seed (ddlvad train --seeds 3 keeps the healthiest) or train longer"
    if h >= DOUBTFUL:
        return "doubtful", f"some synthetic anomalies hide among normal frames; {what}"
    return "unhealthy", f"synthetic anomalies do not stand out; do not deploy it; {what}"
