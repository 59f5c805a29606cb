"""Scoring protocols side by side from one reconstruction pass (``ddlvad test --protocols``).

The network runs once over the test split; each video's error maps are kept while its frame
scores are taken under every patch size and grid, then each raw series goes through every
median window, with and without per-video min-max. Papers differ on these choices, and at a
working size other than the paper's 256x256 the right patch is not 16 (16 px at 256 is 8 px
at 128), so a user tuning a camera sees every protocol's AUC for the price of one test.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlvad.config import Config
from ddlvad.io import atomic_write_json
from ddlvad.rundir import PROTOCOLS, load_trained, pick_device
from ddlvad.scoring.gain import gain_for_run
from ddlvad.scoring.protocol import patch_max
from ddlvad.scoring.reconstruct import reconstruct_video

PATCHES = (4, 8, 16, 32)
MEDIANS = (0, 9, 17, 33)


def raw_by_grid(
    model, videos: dict[str, np.ndarray], cfg: Config, device, patches=PATCHES, gain=None
) -> dict[tuple[int, bool], dict[str, np.ndarray]]:
    """{(patch, shifted): {video: raw scores}} from one pass (edge rule cfg.score.edge;
    brightness calibration ``gain``, a ``ddlvad.scoring.gain.Gain``, when given)."""
    T, s = cfg.model_T, cfg.score
    side = min(cfg.data.height, cfg.data.width)
    grids = [(p, sh) for p in patches for sh in (False, True) if p <= side - (p // 2) * sh]
    out: dict[tuple[int, bool], dict[str, np.ndarray]] = {g: {} for g in grids}
    for name, video in videos.items():
        _, maps = reconstruct_video(
            model,
            video,
            T,
            batch_size=s.batch_size,
            device=device,
            patch=1,
            keep_maps=True,
            edge=s.edge,
            gain=gain,
        )
        err = torch.from_numpy(maps)  # (N, H, W)
        for p, sh in grids:
            out[(p, sh)][name] = patch_max(err, p, sh).double().numpy()
    return out


def protocol_rows(
    raw: dict[tuple[int, bool], dict[str, np.ndarray]],
    labels: dict[str, np.ndarray],
    cfg: Config,
    medians=MEDIANS,
) -> list[dict[str, Any]]:
    """One row per (patch, shifted, median): micro, per-video-normalised micro, macro AUC."""
    from ddlvad.scoring.evaluate import frame_metrics

    rows = []
    for (p, sh), m in itertools.product(raw, medians):
        c = copy.deepcopy(cfg)
        c.score.patch, c.score.shifted, c.score.median, c.score.normalize = p, sh, m, False
        met = frame_metrics(raw[(p, sh)], labels, c)
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


def compare_protocols(run_dir: str | Path, cfg: Config, progress: bool = True) -> list[dict]:
    """Score the run's test split once under every protocol; write RUN/protocols.json."""
    from ddlvad.data.loading import load_videos, open_dataset

    device = pick_device(cfg.train.device)
    info: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, cfg, device, info=info)
    gain = gain_for_run(run_dir, cfg)
    ds = open_dataset(cfg)
    labels = {r.name: r.labels for r in ds.test if r.labels is not None}
    if not labels:
        raise ValueError(f"{cfg.data.root}: test split has no labels to compare protocols on")
    videos = load_videos([r for r in ds.test if r.name in labels], cfg, progress)
    own = cfg.score  # the run's own protocol is always among the rows
    with torch.inference_mode():
        raw = raw_by_grid(model, videos, cfg, device, sorted({*PATCHES, own.patch}), gain)
    rows = protocol_rows(raw, labels, cfg, sorted({*MEDIANS, own.median}))
    doc = {"checkpoint": info, "edge": cfg.score.edge, "gain": cfg.score.gain, "rows": rows}
    atomic_write_json(Path(run_dir) / PROTOCOLS, doc)
    return rows
