"""``ddlvad ablate``: the paper's models x modes grid (Tables 2-3), with seeds and spread.

Each cell (model, mode, seed) is an ordinary run directory ``<out>/<model>_<mode>_s<seed>``.
The grid is resumable: a cell with metrics.json is not rerun, a cell with a checkpoint but no
train_summary.json resumes training, and a trained cell without metrics is only tested.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ddlvad.config import Config
from ddlvad.io import atomic_write_json, atomic_write_text
from ddlvad.rundir import METRICS, TRAIN_SUMMARY

MODELS = ("unet", "c3dsu")
MODES = ("none", "static", "dynamic")
MODE_NAMES = {"none": "without DDL", "static": "SDL", "dynamic": "DDL"}

# Frame-level AUC (%) from the paper, Tables 2 and 3.
PAPER = {
    "ped2": {
        "unet": {"none": 86.90, "static": 95.28, "dynamic": 97.76},
        "c3dsu": {"none": 95.55, "static": 97.12, "dynamic": 98.46},
    },
    "avenue": {
        "unet": {"none": 84.18, "static": 87.06, "dynamic": 88.96},
        "c3dsu": {"none": 82.54, "static": 89.41, "dynamic": 90.35},
    },
}


def cell_config(base: Config, model: str, mode: str, seed: int) -> Config:
    cfg = copy.deepcopy(base)
    cfg.model.name, cfg.pseudo.mode, cfg.train.seed = model, mode, seed
    cfg.name = cell_name(model, mode, seed)
    return cfg


def run_cell(cfg: Config, run_dir: Path, progress: bool) -> dict:
    """Train (or resume) and test one cell unless its metrics already exist."""
    from ddlvad.report.plots import plot_run_sigma
    from ddlvad.scoring.evaluate import evaluate
    from ddlvad.train.loop import train

    metrics_path = run_dir / METRICS
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    if not (run_dir / TRAIN_SUMMARY).exists():  # resume: fresh when no checkpoint yet
        train(cfg, run_dir, resume=True, progress=progress)
        plot_run_sigma(run_dir, cfg)
    return evaluate(run_dir, cfg, progress=progress)


def cell_name(model: str, mode: str, seed: int) -> str:
    return f"{model}_{mode}_s{seed}"


def finished_cells(out: Path, names: dict) -> Iterator[tuple[Any, Path, dict, dict]]:
    """(key, run dir, metrics.json, train_summary.json) of each finished cell of ``names``
    ({key: folder name under ``out``}), in order; unfinished cells are skipped."""
    for key, name in names.items():
        d = out / name
        if (d / METRICS).exists():
            m, summary = (json.loads((d / f).read_text()) for f in (METRICS, TRAIN_SUMMARY))
            yield key, d, m, summary


def collect(out: Path, models, modes, seeds: int) -> list[dict]:
    """One row per finished cell, read back from its metrics.json and train_summary.json."""
    keys = itertools.product(models, modes, range(seeds))
    return [
        {
            "model": model,
            "mode": mode,
            "seed": seed,
            "run": str(d),
            "auc": m["frame_auc_micro"],
            "auc_macro": m["frame_auc_macro"],
            "sigma": s.get("sigma"),
            "seconds": s.get("seconds"),
        }
        for (model, mode, seed), d, m, s in finished_cells(out, {k: cell_name(*k) for k in keys})
    ]


def summarise(rows: list[dict]) -> dict:
    """{model: {mode: {mean, std, n}}} of micro AUC in %, std over seeds (ddof 1 when n > 1)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["model"], {}).setdefault(r["mode"], []).append(100 * r["auc"])
    return {
        model: {
            mode: {
                "mean": float(np.mean(v)),
                "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "n": len(v),
            }
            for mode, v in modes.items()
        }
        for model, modes in out.items()
    }


def markdown(summary: dict, models, modes, dataset: str, command: str) -> str:
    paper = PAPER.get(dataset, {})
    head = "| model | " + " | ".join(f"{MODE_NAMES[m]} (ours)" for m in modes)
    head += "".join(f" | {MODE_NAMES[m]} (paper)" for m in modes) if paper else ""
    lines = [
        f"# Ablation: frame-level micro AUC (%) on {dataset}",
        "",
        f"Command: `{command}`",
        "",
        "mean ± std over seeds (n = seeds finished; no std for n = 1)",
        "",
        head + " |",
        "|" + "---|" * (1 + len(modes) * (2 if paper else 1)),
    ]
    for model in models:
        cells = []
        for mode in modes:
            c = summary.get(model, {}).get(mode)
            if not c:
                cells.append("—")
            elif c["n"] == 1:  # no spread from a single seed
                cells.append(f"{c['mean']:.2f} (n=1)")
            else:
                cells.append(f"{c['mean']:.2f} ± {c['std']:.2f} (n={c['n']})")
        if paper:
            cells += [f"{paper[model][m]:.2f}" for m in modes]
        lines.append(f"| {model.upper()} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_grid(base: Config, out: Path, seeds: int, models, modes, progress: bool) -> None:
    """Train and test every missing cell, seed-major: a partial grid covers every cell once."""
    for seed in range(seeds):
        for model in models:
            for mode in modes:
                cfg = cell_config(base, model, mode, seed)
                run_cell(cfg, out / cfg.name, progress)


def ablate(
    base: Config,
    out: Path,
    *,
    seeds: int = 1,
    models=MODELS,
    modes=MODES,
    dataset: str = "",
    command: str = "",
    progress: bool = True,
    train: bool = True,
) -> dict:
    """Run the grid (unless ``train`` is False) and write the table of its finished cells."""
    out.mkdir(parents=True, exist_ok=True)
    if train:
        run_grid(base, out, seeds, models, modes, progress)
    rows = collect(out, models, modes, seeds)
    summary = summarise(rows)
    doc = {
        "dataset": dataset,
        "command": command,
        "cells": rows,
        "summary": summary,
        "paper": PAPER.get(dataset),
    }
    atomic_write_json(out / "ablation.json", doc)
    atomic_write_text(out / "ablation.md", markdown(summary, models, modes, dataset, command))
    return doc
