"""Scoring protocols side by side from one reconstruction pass (``ddlvad test --protocols``).

The network runs once over the test split; each video's error maps are kept while its frame
scores are taken under every patch size and grid, then each raw series goes through every
median window, with and without per-video min-max. Papers differ on these choices, and at a
working size other than the paper's 256x256 the right patch is not 16 (16 px at 256 is 8 px
at 128), so a user tuning a camera sees every protocol's AUC for the price of one test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlvad.config import Config
from ddlvad.io import atomic_write_json
from ddlvad.rundir import PROTOCOLS, load_trained, pick_device
from ddlvad.scoring.backends import TorchForward
from ddlvad.scoring.engine import ScoreEngine, engine_for_run
from ddlvad.scoring.frame import patch_max
from ddlvad.scoring.post import ScorePipeline
from ddlvad.scoring.protocol import ScoreProtocol

PATCHES = (4, 8, 16, 32)
MEDIANS = (0, 9, 17, 33)


def raw_by_grid(
    engine: ScoreEngine, videos: dict[str, np.ndarray], size: tuple[int, int], patches=PATCHES
) -> dict[tuple[int, bool], dict[str, np.ndarray]]:
    """{(patch, shifted): {video: raw scores}} from one pass of ``engine`` (its edge rule and
    gain) over ``videos`` of working ``size`` (H, W), each grid on the same error maps."""
    side = min(size)
    grids = [(p, sh) for p in patches for sh in (False, True) if p <= side - (p // 2) * sh]
    out: dict[tuple[int, bool], dict[str, np.ndarray]] = {g: {} for g in grids}
    for name, video in videos.items():
        _, maps = engine.score_video(video, keep_maps=True)
        err = torch.from_numpy(maps)  # (N, H, W)
        for p, sh in grids:
            out[(p, sh)][name] = patch_max(err, p, sh).double().numpy()
    return out


def protocol_rows(
    raw: dict[tuple[int, bool], dict[str, np.ndarray]],
    labels: dict[str, np.ndarray],
    base: ScoreProtocol,
    medians=MEDIANS,
) -> list[dict[str, Any]]:
    """One row per (patch, shifted, median): micro, per-video-normalised micro, macro AUC."""
    from ddlvad.scoring.evaluate import frame_metrics

    rows = []
    for (p, sh), m in itertools.product(raw, medians):
        protocol = base.replace(patch=p, shifted=sh, median=m, normalize=False)
        met = frame_metrics(raw[(p, sh)], labels, ScorePipeline(protocol))
        rows.append(
            {
                "patch": p,
                "shifted": sh,
                "median": m,
                "micro": met["frame_auc_micro"],
                "micro_normalized": met["frame_auc_micro_normalized"],
                "macro": met["frame_auc_macro"],
            }
        )
    return rows


def table_text(rows: list[dict[str, Any]]) -> str:
    lines = ["patch shifted median   micro  micro(min-max)  macro"]
    for r in rows:
        lines.append(
            f"{r['patch']:5d} {'yes' if r['shifted'] else 'no':>7s} {r['median'] or 'off':>6} "
            f"{100 * r['micro']:7.2f} {100 * r['micro_normalized']:15.2f} {100 * r['macro']:6.2f}"
        )
    return "\n".join(lines)


def compare_protocols(
    run_dir: str | Path,
    cfg: Config,
    protocol: ScoreProtocol | None = None,
    progress: bool = True,
) -> list[dict]:
    """Score the run's test split once under every protocol (``protocol``'s edge rule and
    gain; its patch and median among the rows); write RUN/protocols.json."""
    from ddlvad.data.loading import load_videos, open_dataset

    device = pick_device(cfg.train.device)
    info: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, cfg, device, info=info)
    own = protocol or ScoreProtocol.from_config(cfg)  # always among the rows
    maps_only = own.replace(patch=1, shifted=False)  # every grid is taken from the maps
    forward = TorchForward(model, "fp32", device)
    engine = engine_for_run(
        run_dir, maps_only, forward, cfg.model_T, batch_size=cfg.score.batch_size
    )
    ds = open_dataset(cfg)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    if not labels:
        raise ValueError(f"{cfg.data.root}: test split has no labels to compare protocols on")
    videos = load_videos([r for r in ds.test if r.name in labels], cfg, progress)
    size = (cfg.data.height, cfg.data.width)
    raw = raw_by_grid(engine, videos, size, sorted({*PATCHES, own.patch}))
    rows = protocol_rows(raw, labels, own, sorted({*MEDIANS, own.median}))
    doc = {"checkpoint": info, "edge": own.edge, "gain": own.gain, "rows": rows}
    atomic_write_json(Path(run_dir) / PROTOCOLS, doc)
    return rows
