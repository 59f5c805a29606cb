"""``ddlvad ablate --sweep FILE``: named config overrides x seeds, one run directory each.

FILE is YAML mapping a cell name to its overrides (the ``--set`` keys), e.g.::

    baseline: {}
    lr1e-3: {train.lr: 0.001}
    patch8: {score.patch: 8}

Cells run one after another, seed-major (so a partial sweep holds every cell once), through
the ablation grid's resumable ``run_cell``: a finished cell is not rerun, an interrupted one
resumes. ``sweep.md`` / ``sweep.json`` give each cell's micro, per-video-normalised micro and
macro AUC as mean ± std with the spread (max - min) over seeds, and its training minutes;
``sweep.png`` plots AUC against training minutes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ddlvad.config import Config, apply_overrides
from ddlvad.experiments.ablate import Shard, finished_cells, run_cell, sharded
from ddlvad.io import atomic_write_json, atomic_write_text

METRICS = ("frame_auc_micro", "frame_auc_micro_normalized", "frame_auc_macro")


def read_sweep(path: str | Path) -> dict[str, dict[str, str]]:
    """The sweep file as {cell: {key: value}}; errors name the file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: unreadable sweep file ({e})") from None
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{path}: expected a mapping of cell name -> {{key: value}} overrides")
    out = {}
    for name, over in doc.items():
        if (
            not isinstance(over, dict | type(None))
            or not str(name).replace("-", "_").isidentifier()
        ):
            raise ValueError(f"{path}: cell {name!r}: expected a name and a mapping of overrides")
        out[str(name)] = {str(k): str(v) for k, v in (over or {}).items()}
    return out


def cell_config(base: Config, name: str, overrides: dict[str, str], seed: int) -> Config:
    cfg = copy.deepcopy(base)
    apply_overrides(cfg, overrides)
    cfg.train.seed, cfg.name = seed, cell_name(name, seed)
    return cfg.validate(f"sweep cell {name}")


def run_sweep(
    base: Config, cells: dict, out: Path, seeds: int, progress: bool, shard: Shard | None = None
) -> None:
    """Train and test the missing runs (of ``shard`` only, if given), seed-major."""
    runs = [(seed, name) for seed in range(seeds) for name in cells]
    for seed, name in sharded(runs, shard):
        cfg = cell_config(base, name, cells[name], seed)
        run_cell(cfg, out / cfg.name, progress)


def collect(outs: Sequence[Path], cells: dict, seeds: int) -> list[dict[str, Any]]:
    """One row per finished cell (from the first folder of ``outs`` holding it finished): its
    name, seed, run, training seconds and METRICS."""
    names = {(name, seed): cell_name(name, seed) for name in cells for seed in range(seeds)}
    return [
        {"cell": name, "seed": seed, "run": str(d), "seconds": s.get("seconds")}
        | {k: m.get(k) for k in METRICS}
        for (name, seed), d, m, s in finished_cells(outs, names)
    ]


def cell_name(name: str, seed: int) -> str:
    return f"{name}_s{seed}"


def summarise(rows: list[dict], cells: dict) -> dict[str, dict[str, Any]]:
    """{cell: {metric: {mean, std, spread, n}, minutes, overrides}} in % and minutes."""
    out = {}
    for name, over in cells.items():
        mine = [r for r in rows if r["cell"] == name]
        if not mine:
            continue
        entry: dict[str, Any] = {"overrides": over, "n": len(mine)}
        for k in METRICS:
            v = [100 * r[k] for r in mine if r[k] is not None]
            entry[k] = {
                "mean": float(np.mean(v)) if v else None,
                "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                "spread": float(max(v) - min(v)) if len(v) > 1 else None,
            }
        entry["minutes"] = float(np.mean([(r["seconds"] or 0) / 60 for r in mine]))
        out[name] = entry
    return out


def _cell_text(c: dict) -> str:
    if c["mean"] is None:
        return "—"
    if c["std"] is None:
        return f"{c['mean']:.2f}"
    return f"{c['mean']:.2f} ± {c['std']:.2f} (spread {c['spread']:.2f})"


def markdown(summary: dict, command: str) -> str:
    lines = [
        "# Sweep: frame-level AUC (%) per cell, mean ± std over seeds",
        "",
        f"Command: `{command}`",
        "",
        "| cell | overrides | n | micro | micro, per-video min-max | macro | train min |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary.items():
        over = ", ".join(f"{k}={v}" for k, v in e["overrides"].items()) or "(preset)"
        cells = " | ".join(_cell_text(e[k]) for k in METRICS)
        lines.append(f"| {name} | {over} | {e['n']} | {cells} | {e['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["cell"] for r in rows):
        mine = [r for r in rows if r["cell"] == name]
        ax.scatter(
            [(r["seconds"] or 0) / 60 for r in mine],
            [100 * r["frame_auc_micro"] for r in mine],
            label=name,
        )
    ax.set_xlabel("training minutes")
    ax.set_ylabel("frame micro AUC (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep(
    base: Config,
    sweep_file: str | Path,
    out: Path,
    *,
    seeds: int,
    command: str,
    progress: bool = True,
    train: bool = True,
    shard: Shard | None = None,
    merge: Sequence[Path] = (),
) -> dict:
    """Run the missing cells (unless ``train`` is False; only ``shard``'s if given); write
    sweep.md/json/png from every finished cell under ``out`` or else under ``merge``."""
    cells = read_sweep(sweep_file)
    for name, over in cells.items():  # every cell's overrides must apply before any training
        cell_config(base, name, over, 0)
    out.mkdir(parents=True, exist_ok=True)
    if train:
        run_sweep(base, cells, out, seeds, progress, shard)
    rows = collect([out, *merge], cells, seeds)
    summary = summarise(rows, cells)
    doc = {"command": command, "cells": rows, "summary": summary}
    atomic_write_json(out / "sweep.json", doc)
    atomic_write_text(out / "sweep.md", markdown(summary, command))
    if rows:
        plot(rows, out / "sweep.png")
    return doc
