"""``ddlvad demo``: generate a synthetic scene, train DDL on it, test it, report the AUC and
the alerts the run raises on the test videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddlvad.api import Run
from ddlvad.config import load_preset
from ddlvad.data.synthetic import SceneSpec, generate
from ddlvad.rundir import SCORES
from ddlvad.scoring.evaluate import read_scores_csv
from ddlvad.scoring.post import ranges_of

# The demo's scene: the generator's defaults, its test videos holding a cart on the footpath
# (``shape``: 01, 03) or a walker several times faster than the others (``fast``: 02). A
# walker crossing the grass (``offpath``) is left out: the darker grass gives it less contrast
# than the walkers on the path have, and at 64x64 it scored below normal frames (per-video AUC
# 10.5 to 68.7 over five demo configs; docs/results.md, "Synthetic demo").
DEMO_SCENE = SceneSpec(anomalies=("shape", "fast"))


def run_demo(
    out: Path,
    *,
    epochs: int = 0,
    progress: bool = True,
    spec: SceneSpec | None = None,
    preset: str = "demo",
) -> dict:
    """Generate the scene (once), train ``preset`` on it, test it; the test metrics, the
    final sigma, the run's path and its alerts on the test videos (``alert_summary``)."""
    out = Path(out)
    root = out / "data"
    if not (root / "boxes.json").exists():
        generate(root, spec or DEMO_SCENE)
    cfg = load_preset(preset)
    cfg.name = "demo"
    cfg.data.root = str(root.resolve())
    cfg.data.cache_dir = str((out / "cache").resolve())
    if epochs:
        cfg.train.epochs = epochs
    run = Run(out / "run")
    summary = run.train(cfg, overwrite=True, progress=progress)  # a demo re-runs
    metrics = run.test(cfg, progress=progress)
    return {**metrics, "sigma": summary["sigma"], "run": str(run.path), **alert_summary(run)}


def alert_summary(run: Run) -> dict[str, Any]:
    """The alerts ``predict`` raises on the tested videos (the run's detector on test's raw
    scores: the same alert scores and threshold), against their labels: ``events`` (labelled
    ranges), ``events_alerted`` (those holding an alert frame), ``false_alerts`` (alert
    ranges on normal frames only) and ``alerts`` ({video: [(first, last), ...]})."""
    det = run.detector(precision="fp32")
    found: dict[str, list[tuple[int, int]]] = {}
    events = alerted = false = 0
    for name, d in read_scores_csv(run.path / SCORES).items():
        found[name] = det.alerts(det.smooth(d["raw"]))
        labels = d["label"] == 1
        for a, b in ranges_of(labels):
            events += 1
            alerted += any(s <= b and e >= a for s, e in found[name])
        false += sum(not labels[s : e + 1].any() for s, e in found[name])
    return {"events": events, "events_alerted": alerted, "false_alerts": false, "alerts": found}
