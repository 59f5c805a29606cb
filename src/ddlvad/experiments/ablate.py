"""``ddlvad ablate``: the paper's models x modes grid (Tables 2-3), with seeds and spread.

Each cell (model, mode, seed) is an ordinary run directory ``<out>/<model>_<mode>_s<seed>``.
The grid is resumable: a cell with metrics.json is not rerun, a cell with a checkpoint but no
train_summary.json resumes training, and a trained cell without metrics is only tested.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddlvad.api import Run
from ddlvad.config import Config, apply_overrides
from ddlvad.io import atomic_write_json, atomic_write_text
from ddlvad.rundir import METRICS, TRAIN_SUMMARY

ABLATION_JSON = "ablation.json"
SIGMA_PNG = "ablation_sigma.png"
MODELS = ("unet", "c3dsu")
MODES = ("none", "static", "dynamic")  # the paper's three columns, the default grid
# Extra columns (not in the paper) that separate the strength of the pseudo-anomalies from
# its adaptation: SDL fixed near where DDL's sigma ends, and DDL with l learning 10x slower.
VARIANTS = {
    "static95": {"pseudo.mode": "static", "pseudo.sigma": 0.95},
    "dynamic_slow": {"pseudo.mode": "dynamic", "pseudo.l_lr_scale": 0.1},
}
ALL_MODES = (*MODES, *VARIANTS)
MODE_NAMES = {
    "none": "without DDL",
    "static": "SDL",
    "dynamic": "DDL",
    "static95": "SDL σ=0.95",
    "dynamic_slow": "DDL, l at lr/10",
}

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
    """The base config with the cell's model, pseudo-anomaly mode (or VARIANTS entry), seed."""
    cfg = copy.deepcopy(base)
    cfg.model.name, cfg.train.seed = model, seed
    apply_overrides(cfg, VARIANTS.get(mode, {"pseudo.mode": mode}))
    cfg.name = cell_name(model, mode, seed)
    return cfg.validate(f"ablation cell {cfg.name}")


def run_cell(cfg: Config, run_dir: Path, progress: bool) -> dict:
    """Train (or resume) and test one cell unless its metrics already exist."""
    metrics_path = run_dir / METRICS
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    run = Run(run_dir)
    if not (run_dir / TRAIN_SUMMARY).exists():  # resume: fresh when no checkpoint yet
        run.train(cfg, resume=True, progress=progress)
    return run.test(cfg, progress=progress)


def cell_label(row: dict) -> str:
    """A finished cell's legend label, e.g. "C3DSU DDL s0"."""
    return f"{row['model'].upper()} {MODE_NAMES[row['mode']]} s{row['seed']}"


def cell_name(model: str, mode: str, seed: int) -> str:
    return f"{model}_{mode}_s{seed}"


def finished_cells(outs: Sequence[Path], names: dict) -> Iterator[tuple[Any, Path, dict, dict]]:
    """(key, run dir, metrics.json, train_summary.json) of each finished cell of ``names``
    ({key: folder name}), in order, from the first of the grid folders ``outs`` where it is
    finished; unfinished cells are skipped."""
    for key, name in names.items():
        for d in (out / name for out in outs):
            if (d / METRICS).exists():
                m, summary = (json.loads((d / f).read_text()) for f in (METRICS, TRAIN_SUMMARY))
                yield key, d, m, summary
                break


RECORD_KEYS = ("model", "mode", "seed", "auc", "auc_macro")


def read_records(path: Path) -> list[dict]:
    """The cells of an earlier ablation.json (a shard run on another machine, or a grid whose
    run folders are gone), each marked with the file (``from``) and command it came from,
    unless it already names an earlier source; ValueError naming the file if it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
        cells = doc["cells"]
        if not all(isinstance(c, dict) and set(RECORD_KEYS) <= set(c) for c in cells):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path}: expected an ablation.json whose cells each hold {', '.join(RECORD_KEYS)}"
        ) from None
    src = {"from": str(path), "command": doc.get("command", "")}
    return [{**src, **c} for c in cells]


def collect(
    outs: Sequence[Path], models, modes, seeds: int, records: Sequence[dict] = ()
) -> list[dict]:
    """One row per finished cell, read back from its metrics.json and train_summary.json in
    the first of the grid folders ``outs`` that holds it finished, or else the first of the
    recorded rows ``records`` (``read_records``) for it; in grid order."""
    keys = list(itertools.product(models, modes, range(seeds)))
    found = {
        key: {
            "model": key[0],
            "mode": key[1],
            "seed": key[2],
            "run": str(d),
            "auc": m["frame_auc_micro"],
            "auc_macro": m["frame_auc_macro"],
            "bn": (m.get("checkpoint") or {}).get("bn"),
            "sigma": s.get("sigma"),
            "seconds": s.get("seconds"),
        }
        for key, d, m, s in finished_cells(outs, {k: cell_name(*k) for k in keys})
    }
    for r in records:
        found.setdefault((r["model"], r["mode"], r["seed"]), r)
    return [found[k] for k in keys if k in found]


def summarise(rows: list[dict]) -> dict:
    """{model: {mode: {mean, std, spread, n}}} of micro AUC in %: std over seeds (ddof 1 when
    n > 1) and spread = max - min."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["model"], {}).setdefault(r["mode"], []).append(100 * r["auc"])
    return {
        model: {
            mode: {
                "mean": float(np.mean(v)),
                "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "spread": float(np.ptp(v)),
                "n": len(v),
            }
            for mode, v in modes.items()
        }
        for model, modes in out.items()
    }


def _cell_text(c: dict | None) -> str:
    if not c:
        return "—"
    if c["n"] == 1:  # no spread from a single seed
        return f"{c['mean']:.2f} (n=1)"
    return f"{c['mean']:.2f} ± {c['std']:.2f}, spread {c['spread']:.2f} (n={c['n']})"


def grid_rows(summary: dict, models, modes, dataset: str) -> tuple[list[str], list[list[str]]]:
    """The grid as (header, rows): one row per model, our cells (mean ± std, spread, n) and
    then the paper's value for each of its three modes."""
    paper = PAPER.get(dataset, {})
    theirs = [m for m in modes if paper and m in MODES]
    header = ["model", *(f"{MODE_NAMES[m]} (ours)" for m in modes)]
    header += [f"{MODE_NAMES[m]} (paper)" for m in theirs]
    rows = [
        [model.upper(), *(_cell_text(summary.get(model, {}).get(m)) for m in modes)]
        + [f"{paper[model][m]:.2f}" for m in theirs]
        for model in models
    ]
    return header, rows


def run_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per finished run: cell, seed, micro and macro AUC, the BatchNorm statistics
    scored with, final sigma, training minutes, and where it was read (run folder, or the
    ablation.json it was recorded in)."""
    header = ["run", "seed", "micro", "macro", "BN", "sigma at the end", "training min", "from"]
    out = []
    for r in rows:
        sig = "—" if r.get("sigma") is None else f"{r['sigma']:.3f}"
        mins = "—" if r.get("seconds") is None else f"{r['seconds'] / 60:.1f}"
        name = f"{r['model']} {MODE_NAMES[r['mode']]}"
        out.append([name, str(r["seed"]), f"{100 * r['auc']:.2f}", f"{100 * r['auc_macro']:.2f}"])
        out[-1] += [r.get("bn") or "—", sig, mins, r.get("from") or r.get("run", "—")]
    return header, out


def sigma_overlay(out: Path, rows: list[dict]) -> Path | None:
    """``out``/ablation_sigma.png: the learned-sigma runs among ``rows`` on one axis; None
    (nothing written) while no finished run has a sigma trajectory."""
    from ddlvad.report.plots import plot_sigma_overlay

    runs = {cell_label(r): Path(r["run"]) for r in rows if r.get("run")}  # a record may have none
    try:
        return plot_sigma_overlay(runs, out / SIGMA_PNG)
    except ValueError:  # no learned-sigma run yet
        return None


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(
    summary: dict, models, modes, dataset: str, command: str, rows: list[dict] | None = None
) -> str:
    """ablation.md: the grid beside the paper and, given ``rows``, one line per run."""
    lines = [
        f"# Ablation: frame-level micro AUC (%) on {dataset}",
        "",
        f"Command: `{command}`",
        "",
        "mean ± std over seeds, spread = max - min (n = seeds finished; no std for n = 1)",
        "",
        *md_table(*grid_rows(summary, models, modes, dataset)),
    ]
    if rows:
        lines += ["", *md_table(*run_rows(rows))]
    sources = {r["from"]: r.get("command", "") for r in rows or () if r.get("from")}
    if sources:
        lines += ["", "Recorded cells (no run folder here) and their commands:", ""]
        lines += [f"- {src}: `{cmd}`" for src, cmd in sources.items()]
    return "\n".join(lines) + "\n"


Shard = tuple[int, int]  # (i, n): this process runs cells i, i + n, i + 2n, ... of the order


def parse_shard(text: str) -> Shard:
    """Parse "I/N" into (I, N) with 0 <= I < N; ValueError naming the expected form if not."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/2") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: expected 0 <= I < N")
    return i, n


def sharded(items: list, shard: Shard | None) -> list:
    """The items of ``shard`` (every N-th from the I-th), all of them when ``shard`` is None."""
    return items if shard is None else items[shard[0] :: shard[1]]


def run_grid(
    base: Config, out: Path, seeds: int, models, modes, progress: bool, shard: Shard | None = None
) -> None:
    """Train and test every missing cell (of ``shard`` only, if given), seed-major: a partial
    grid covers every cell once."""
    cells = list(itertools.product(range(seeds), models, modes))
    for seed, model, mode in sharded(cells, shard):
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
    shard: Shard | None = None,
    merge: Sequence[Path] = (),
) -> dict:
    """Run the grid (unless ``train`` is False; only ``shard``'s cells if given) and write
    the table of its finished cells, whichever process finished them, under ``out`` or else
    in ``merge``: grid folders (shards run where ``out`` could not be shared) and earlier
    ablation.json files, whose recorded cells fill what no folder holds."""
    out.mkdir(parents=True, exist_ok=True)
    folders = [Path(m) for m in merge if not Path(m).is_file()]
    records = [r for m in merge if Path(m).is_file() for r in read_records(Path(m))]
    if train:
        run_grid(base, out, seeds, models, modes, progress, shard)
    rows = collect([out, *folders], models, modes, seeds, records)
    summary = summarise(rows)
    doc = {
        "dataset": dataset,
        "command": command,
        "models": list(models),
        "modes": list(modes),
        "cells": rows,
        "summary": summary,
        "paper": PAPER.get(dataset),
    }
    atomic_write_json(out / ABLATION_JSON, doc)
    md = markdown(summary, models, modes, dataset, command, rows)
    if png := sigma_overlay(out, rows):
        md += f"\nsigma trajectories of the DDL cells: `{png.name}`\n"
    atomic_write_text(out / "ablation.md", md)
    return doc
