"""``ddlvad demo``: generate a synthetic scene, train DDL on it, test it, report the AUC."""

from __future__ import annotations

from pathlib import Path

from ddlvad.api import Run
from ddlvad.config import load_preset
from ddlvad.data.synthetic import SceneSpec, generate


def run_demo(
    out: Path,
    *,
    epochs: int = 0,
    progress: bool = True,
    spec: SceneSpec | None = None,
    preset: str = "demo",
) -> dict:
    out = Path(out)
    root = out / "data"
    if not (root / "boxes.json").exists():
        generate(root, spec or SceneSpec())
    cfg = load_preset(preset)
    cfg.name = "demo"
    cfg.data.root = str(root.resolve())
    cfg.data.cache_dir = str((out / "cache").resolve())
    if epochs:
        cfg.train.epochs = epochs
    run = Run(out / "run")
    summary = run.train(cfg, overwrite=True, progress=progress)  # a demo re-runs
    metrics = run.test(cfg, progress=progress)
    return {**metrics, "sigma": summary["sigma"], "run": str(run.path)}
