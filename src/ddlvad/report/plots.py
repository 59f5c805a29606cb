"""Plots (matplotlib, Agg backend): written to PNG files, never shown."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ddlvad.config import Config  # noqa: E402
from ddlvad.io import atomic_write  # noqa: E402
from ddlvad.rundir import SIGMA_CSV, SIGMA_PLOT  # noqa: E402
from ddlvad.scoring.post import ranges_of  # noqa: E402


def read_sigma(path: str | Path) -> tuple[list[int], list[int], list[float]]:
    epochs, steps, sigma = [], [], []
    with Path(path).open() as f:
        for row in csv.DictReader(f):
            epochs.append(int(row["epoch"]))
            steps.append(int(row["step"]))
            sigma.append(float(row["sigma"]))
    return epochs, steps, sigma


def plot_sigma_trajectory(sigma_csv: str | Path, out_png: str | Path) -> Path:
    """Figure 5 style: sigma(l) per training step, epochs marked on the top axis."""
    epochs, steps, sigma = read_sigma(sigma_csv)
    if not steps:
        raise ValueError(f"{sigma_csv}: no sigma rows to plot")
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=120)
    ax.plot(steps, sigma, lw=1.2, color="tab:red")
    ax.set_xlabel("training step")
    ax.set_ylabel("anomaly weight sigma(l)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    starts = [s for i, s in enumerate(steps) if i == 0 or epochs[i] != epochs[i - 1]]
    for s in starts[1:]:
        ax.axvline(s, color="gray", lw=0.5, ls=":")
    ax.set_title(
        f"sigma trajectory: {sigma[0]:.3f} -> {sigma[-1]:.3f} "
        f"(max {max(sigma):.3f}), {len(starts)} epochs",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_sigma_overlay(runs: dict[str, Path], out_png: str | Path) -> Path:
    """Sigma per training step of several runs on one axis ({legend label: run dir}); runs
    whose label differs only in its trailing seed ("... s1") share a colour. Runs without
    sigma rows (no pseudo-anomalies) are left out; ValueError when none has any. Within a
    colour, each seed has its own line style."""
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    colours: dict[str, str] = {}
    seen: dict[str, int] = {}  # runs drawn so far per colour group
    drawn = 0
    for label, run in runs.items():
        path = Path(run) / SIGMA_CSV
        steps, sigma = read_sigma(path)[1:] if path.exists() else ([], [])
        if not steps or max(sigma) == min(sigma):  # nothing learned: SDL or no DDL
            continue
        group = label.rsplit(" s", 1)[0]
        colour = colours.setdefault(group, f"C{len(colours) % 10}")
        seen[group] = n = seen.get(group, 0) + 1
        style = ("-", "--", ":", "-.")[(n - 1) % 4]
        ax.plot(steps, sigma, lw=1.0, color=colour, ls=style, label=label, alpha=0.85)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise ValueError("no run with a learned sigma trajectory to plot")
    ax.set_xlabel("training step")
    ax.set_ylabel("anomaly weight sigma(l)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"sigma trajectories of {drawn} runs", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_run_sigma(run_dir: str | Path, cfg: Config) -> Path | None:
    """A trained run's Figure 5, ``plots/sigma_trajectory.png``, drawn from its sigma.csv
    when the run learns sigma (``pseudo.mode`` dynamic) and has trained a step; else None.
    Called after training by the train verb, the demo and the ablation grid."""
    path = Path(run_dir) / SIGMA_CSV
    if cfg.pseudo.mode != "dynamic" or not path.exists() or not read_sigma(path)[1]:
        return None
    return plot_sigma_trajectory(path, Path(run_dir) / SIGMA_PLOT)


def save_figure(fig, out_png: str | Path) -> Path:
    """Write a figure to PNG atomically (parent folders created) and close it."""
    try:
        return atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def plot_score_timeline(
    video: str,
    raw: np.ndarray,
    smoothed: np.ndarray,
    labels: np.ndarray | None,
    out_png: str | Path,
    *,
    auc: float | None = None,
) -> Path:
    """One test video: raw and final frame scores over time, ground-truth anomalies shaded."""
    fig, ax = plt.subplots(figsize=(7, 2.2), dpi=100)
    n = np.arange(len(raw))
    ax.plot(n, raw, lw=0.7, color="tab:gray", alpha=0.7, label="raw")
    ax.plot(n, smoothed, lw=1.3, color="tab:blue", label="final score")
    for k, (a, b) in enumerate(ranges_of(np.asarray(labels) == 1) if labels is not None else []):
        ax.axvspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.18, lw=0, label=None if k else "GT")
    ax.set_xlim(-0.5, max(len(raw), 1) - 0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    title = f"video {video}"
    if auc is not None and np.isfinite(auc):
        title += f" (AUC {100 * auc:.1f})"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", frameon=False, ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path) -> Path:
    """Frame-level ROC curves, one per named (labels, scores) pair; frames pooled."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    for name, (y, s) in curves.items():
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.3, label=name)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.6, ls=":")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("frame-level ROC (micro)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_png)
