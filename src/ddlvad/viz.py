"""Plots (matplotlib, Agg backend): written to PNG files, never shown."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
