"""One model per scene (ShanghaiTech) or camera (``folder``), as the paper does.

``ddlvad train --scene all`` trains ``<out>/scene_<id>/`` for every scene in sequence (a
finished scene is skipped, an interrupted one resumes); ``ddlvad test --run <out>`` on such
a folder tests each scene and reports per-scene AUC and the median over scenes.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ddlvad.api import Run
from ddlvad.config import Config
from ddlvad.data.layouts import list_scenes
from ddlvad.io import atomic_write_json
from ddlvad.report.plots import plot_run_sigma
from ddlvad.rundir import CONFIG, SCENE_PREFIX, TRAIN_SUMMARY, load_run_config, scene_dirs
from ddlvad.scoring.protocol import ScoreProtocol

# A scene run's test setup: (config, protocol) for its folder, as ``ddlvad test`` builds them.
Scoring = Callable[[Path], tuple[Config, ScoreProtocol]]


def train_scenes(
    cfg: Config, out: Path, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> dict:
    """Train one run per scene of ``cfg.data.root``; returns {scene: summary}.

    A finished scene is skipped (its sigma plot redrawn) and an interrupted one resumed,
    unless ``overwrite``."""
    scenes = list_scenes(cfg.data.root, cfg.data.layout)
    if not scenes:
        raise ValueError(f"{cfg.data.root}: no scenes or camera groups found for --scene all")
    summaries = {}
    for s in scenes:
        run = out / f"{SCENE_PREFIX}{s}"
        if (run / TRAIN_SUMMARY).exists() and not overwrite:
            summaries[s] = json.loads((run / TRAIN_SUMMARY).read_text())
            if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes
                plot_run_sigma(run, load_run_config(run))
            continue
        c = copy.deepcopy(cfg)
        c.data.scene, c.name = s, f"{cfg.name}_{s}"
        again = not overwrite and (resume or (run / CONFIG).exists())
        summaries[s] = Run(run).train(c, resume=again, overwrite=overwrite, progress=progress)
    return summaries


def own_scoring(run: Path) -> tuple[Config, ScoreProtocol]:
    """A scene run's own config and protocol."""
    cfg = load_run_config(run)
    return cfg, ScoreProtocol.from_config(cfg)


def test_scenes(out: Path, scoring: Scoring = own_scoring, *, progress: bool = True) -> dict:
    """Test every scene run under ``out``, each with the config and protocol ``scoring``
    gives for it; write ``out/scenes.json`` with the median AUC."""
    per = {}
    for run in scene_dirs(out):
        cfg, protocol = scoring(run)
        m = Run(run).test(cfg, protocol=protocol, progress=progress)
        per[run.name[len(SCENE_PREFIX) :]] = {
            k: m[k] for k in ("frame_auc_micro", "frame_auc_macro", "frames", "anomalous_frames")
        }
    if not per:
        raise ValueError(f"{out}: no {SCENE_PREFIX}* run directories to test")
    aucs = [v["frame_auc_micro"] for v in per.values() if v["frame_auc_micro"] is not None]
    doc = {"scenes": per, "median_frame_auc_micro": float(np.median(aucs)) if aucs else None}
    atomic_write_json(Path(out) / "scenes.json", doc)
    return doc
