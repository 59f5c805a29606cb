"""The outputs of ``ddlvad test`` as one unit: scores.csv, its sidecar and metrics.json.

``publish`` writes the three to temp names, then renames them in, so a failed write (a full
disk) publishes none of them. metrics.json and the sidecar both record the sha256 of the
scores.csv they were written with (``scores_sha256``); ``check_outputs`` refuses a set whose
files do not belong together (two writers mixed, or a crash between the renames).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ddlvad.io import atomic_write_group, json_safe
from ddlvad.rundir import METRICS, SCORES, SCORES_SIDECAR

SCORES_SHA = "scores_sha256"


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return (json.dumps(json_safe(obj), indent=2) + "\n").encode()


def publish(run_dir: Path, scores: str, sidecar: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write scores.csv, scores.csv.json and metrics.json of ``run_dir`` together."""
    data = scores.encode()
    digest = hashlib.sha256(data).hexdigest()
    files = {
        SCORES: data,
        SCORES_SIDECAR: _json_bytes({**sidecar, SCORES_SHA: digest}),
        METRICS: _json_bytes({**metrics, SCORES_SHA: digest}),
    }
    atomic_write_group(
        {run_dir / name: (lambda tmp, b=b: Path(tmp).write_bytes(b)) for name, b in files.items()}
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ValueError(f"{path}: not valid JSON; run `ddlvad test` again") from None


def _mixed(run_dir: Path, what: str) -> ValueError:
    return ValueError(
        f"{run_dir / SCORES} and {run_dir / METRICS} do not belong together ({what}): they "
        f"come from different or interrupted `ddlvad test` runs; run `ddlvad test --run "
        f"{run_dir}` again"
    )


def check_outputs(run_dir: str | Path) -> dict[str, Any]:
    """metrics.json, once scores.csv (and the sidecar, when present) are checked to be the
    files written with it; ValueError naming the files otherwise. Outputs written before
    ``scores_sha256`` existed are matched on the sidecar's checkpoint and protocol."""
    run_dir = Path(run_dir)
    metrics = _read_json(run_dir / METRICS)
    side_path = run_dir / SCORES_SIDECAR
    sidecar = _read_json(side_path) if side_path.exists() else None
    want = metrics.get(SCORES_SHA)
    if want is not None:
        got = hashlib.sha256((run_dir / SCORES).read_bytes()).hexdigest()
        if got != want:
            raise _mixed(run_dir, f"its sha256 {got[:12]}..., metrics.json names {want[:12]}...")
        if sidecar is not None and sidecar.get(SCORES_SHA) != want:
            raise _mixed(run_dir, f"{side_path.name} names another scores.csv")
        return metrics
    if sidecar is not None:
        for key in ("checkpoint", "protocol"):
            if sidecar.get(key) != metrics.get(key):
                raise _mixed(run_dir, f"their {key} records differ")
    return metrics
