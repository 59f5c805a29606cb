"""``ddlvad train --seeds N``: N runs of one config (seeds s, s+1, ..., s+N-1, where s is
``train.seed``), trained one after another and each checked without labels (``ddlvad
check``); the run folder then receives a copy of the healthiest.

    OUT/seeds/seed_<s>/   each seed's own run (resumable; its health.json once checked)
    OUT/                  the healthiest seed's run; train_summary.json adds "health" and
                          "seeds" (every seed's health), written last

A stopped ``--seeds`` run resumes with ``--resume``: finished seeds are kept, the
interrupted one goes on, checks already written are read back.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from ddlvad.api import Run
from ddlvad.config import Config
from ddlvad.health.check import short
from ddlvad.io import atomic_write_json
from ddlvad.rundir import (
    CHECKPOINT,
    CONFIG,
    HEALTH,
    SIGMA_CSV,
    THRESHOLD,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    RunExists,
    check_new_run,
    claim_run,
    clear_run,
    read_health,
)

SEEDS = "seeds"
COPIED = (CONFIG, str(CHECKPOINT), TRAIN_LOG, SIGMA_CSV, THRESHOLD, HEALTH)  # summary last


def seed_dir(out: Path, seed: int) -> Path:
    return out / SEEDS / f"seed_{seed}"


def train_seeds(
    cfg: Config,
    out: Path,
    n: int,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``n`` seeds of ``cfg`` under ``out/seeds/``, check each, publish the healthiest
    at ``out``; returns the published summary."""
    if n < 2:
        raise ValueError(f"--seeds {n}: expected 2 or more seeds to choose from")
    if not resume:
        check_new_run(out, overwrite)
        if (out / SEEDS).exists() and not overwrite:
            raise RunExists(
                f"{out / SEEDS}: holds the seeds of an earlier --seeds run; pass --resume to "
                f"continue it, --overwrite to replace it, or choose another --out"
            )
        if overwrite and (out / SEEDS).exists():
            shutil.rmtree(out / SEEDS)
    records = []
    for seed in range(cfg.train.seed, cfg.train.seed + n):
        run = Run(seed_dir(out, seed))
        c = copy.deepcopy(cfg)
        c.train.seed, c.name = seed, f"{cfg.name}_seed{seed}"
        if not (run.path / TRAIN_SUMMARY).exists():
            run.train(c, resume=(run.path / CONFIG).exists(), progress=progress)
        health = read_health(run.path)
        if not health or health.get("health") is None:  # unchecked: check now (or say why)
            health = run.check(progress=progress)
        records.append({"seed": seed, "run": str(run.path), **short(health)})
    best = max(records, key=lambda r: (r["health"], -r["seed"]))  # ties: the lower seed
    return publish(Path(best["run"]), out, records)


def publish(src: Path, out: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Copy run ``src`` to ``out`` (each file replaced whole; train_summary.json, which
    marks a finished run, last) with the health of every seed in its summary."""
    with claim_run(out):
        clear_run(out)
        for name in COPIED:
            if (src / name).exists():
                dst = out / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".tmp")
                shutil.copy2(src / name, tmp)
                tmp.replace(dst)
        summary = json.loads((src / TRAIN_SUMMARY).read_text())
        chosen = next(r for r in records if Path(r["run"]) == src)
        summary.update(health=chosen, seeds=records, chosen_seed=chosen["seed"])
        atomic_write_json(out / TRAIN_SUMMARY, summary)
    return summary
