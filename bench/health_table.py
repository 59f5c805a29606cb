"""Does the label-free health (``ddlvad check``) predict real test AUC? The table and the
rank correlation over trained runs.

    python bench/health_table.py RUN[=ROOT] ...   [--recheck] [--json OUT.json]

Each RUN is a run folder that ``ddlvad test`` scored (its metrics.json gives the real micro
and macro AUC); ``=ROOT`` names where its dataset lies when not at its data.root. Its health
is read from health.json when that is newer than its checkpoint, else computed (``Run.check``,
which writes health.json). Early checkpoints count as runs: a folder holding a copy of
config.yaml and of one checkpoint, then ``ddlvad test --run``. Prints one row per run and
Spearman's rho of health against micro AUC, over all runs and per dataset.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from ddlvad.api import Run
from ddlvad.health.check import verdict
from ddlvad.rundir import CHECKPOINT, HEALTH, METRICS, load_run_config


def health(run: Path, root: str | None, recheck: bool) -> dict:
    h, ck = run / HEALTH, run / CHECKPOINT
    if not recheck and h.exists() and h.stat().st_mtime >= ck.stat().st_mtime:
        return json.loads(h.read_text())
    return Run(run).check(root=root, progress=False)


def row(arg: str, recheck: bool) -> dict:
    path, _, root = arg.partition("=")
    run = Path(path)
    m = json.loads((run / METRICS).read_text())
    h = health(run, root or None, recheck)
    cfg = load_run_config(run)
    return {
        "run": str(run),
        "dataset": Path(root or cfg.data.root).name,
        "micro": round(100 * m["frame_auc_micro"], 2),
        "macro": round(100 * m["frame_auc_macro"], 2),
        "health": round(h["health"], 4),
        "verdict": h.get("verdict") or verdict(h)[0],
        **{k: round(v, 3) for k, v in h["kinds"].items()},
        "drift": round(h["drift"], 2),
    }


def rho(rows: list[dict], key: str = "micro") -> tuple[float, int]:
    if len(rows) < 3:
        return float("nan"), len(rows)
    return float(spearmanr([r["health"] for r in rows], [r[key] for r in rows])[0]), len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN or RUN=ROOT")
    ap.add_argument("--recheck", action="store_true", help="recompute every health")
    ap.add_argument("--json", help="also write the rows and correlations here")
    args = ap.parse_args()
    rows = sorted(
        (row(a, args.recheck) for a in args.runs), key=lambda r: (r["dataset"], r["health"])
    )
    cols = [
        "run",
        "dataset",
        "micro",
        "macro",
        "health",
        "verdict",
        "noise",
        "paste",
        "fast",
        "drift",
    ]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) if c != "run" else Path(r[c]).name for c in cols) + " |")
    out = {"rows": rows, "spearman": {}}
    groups = {"all": rows} | {
        d: [r for r in rows if r["dataset"] == d] for d in {r["dataset"] for r in rows}
    }
    for name, rs in groups.items():
        for key in ("micro", "macro"):
            value, n = rho(rs, key)
            out["spearman"][f"{name}/{key}"] = {"rho": value, "runs": n}
            print(f"Spearman rho, health vs {key} AUC, {name}: {value:.3f} over {n} runs")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
