"""Where would sigma go? The distinction loss L_dist(s) of trained runs over a grid of s.

The analysis of eq. (7): with the network fixed, d L / d l = s (1 - s) d L_dist / d s, so
the learned sigma moves toward the minimum of L_dist(s) = mean_b (P_b + eps) / (N_b + eps).
With N proportional to s (the network ignores the noise: inpainting), the ratio falls with s
(sigma climbs) unless P grows faster than s, i.e. unless its elasticity d ln P / d ln s > 1.

For each run this draws ``--batches`` training batches with their pseudo-anomaly masks and
noise (the run's own seed, epoch 0), then for every s of the grid blends the same noise at
strength s (eqs 1-2), reconstructs the middle frame with the run's last weights, and prints the
mean P, N and ratio at each s, the s of the smallest ratio, the elasticity of P there and at
the run's final sigma. BatchNorm uses batch statistics, as training's forward passes did
(``--bn running`` for the eval statistics). Forward passes only; a run without
pseudo-anomalies is probed with the masks its config would have drawn.

    python bench/sigma_landscape.py RUN [RUN ...] [--batches 12] [--root PED2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.rundir import TRAIN_SUMMARY, load_run_config, load_trained
from ddlvad.train.data import make_clips
from ddlvad.train.loss import distinction_terms

GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 0.97)


def probe_batches(cfg, n: int) -> list[dict[str, torch.Tensor]]:
    """``n`` batches of training clips whose middle frame carries a mask (the clips eq. 7 is
    taken over), drawn in order from clips spread evenly over the training set."""
    cfg = copy.deepcopy(cfg)
    cfg.pseudo.mode = "static"  # masks and noise as any pseudo-anomaly run draws them
    clips, _ = make_clips(cfg, progress=False)
    clips.set_epoch(0)
    B = cfg.train.batch_size
    items = []
    for i in np.linspace(0, len(clips) - 1, min(len(clips), 4 * n * B)).astype(int):
        it = clips[int(i)]
        if it["M"][0, it["M"].shape[1] // 2].any():  # (1, T, H, W): the middle frame's mask
            items.append(it)
    if not items:
        raise ValueError(f"{cfg.data.root}: no training clip carries a pseudo-anomaly mask")
    return [
        {k: torch.stack([it[k] for it in items[j : j + B]]) for k in ("X", "M", "A")}
        for j in range(0, min(len(items), n * B), B)
    ]


@torch.no_grad()
def landscape(model, batches, grid, cfg) -> dict[str, list[float]]:
    """Mean P, N and ratio (P + eps) / (N + eps) over the masked clips, at each s."""
    eps, norm = cfg.loss.eps, cfg.loss.norm
    rows = {"s": list(grid), "P": [], "N": [], "ratio": []}
    for s in grid:
        P, N, R = [], [], []
        for b in batches:
            X, M, A = b["X"], b["M"], b["A"]  # (B, C, T, H, W), (B, 1, T, H, W)
            t = X.shape[2] // 2
            X_A = PseudoAnomalyCreator("static", sigma=s)(X, M, A)  # eqs (1)-(2)
            ya = model(X_A)
            r, p, n = distinction_terms(
                X[:, :, t], X_A[:, :, t], ya, M[:, 0, t], eps=eps, norm=norm
            )
            R.append(r)
            P.append(p)
            N.append(n)
        for k, v in (("P", P), ("N", N), ("ratio", R)):
            rows[k].append(float(torch.cat(v).mean()))
    return rows


def elasticity(s: list[float], P: list[float], at: float) -> float:
    """d ln P / d ln s at ``at``, from the grid by central differences (interpolated)."""
    ls, lp = np.log(s), np.log(P)
    g = np.gradient(lp, ls)
    return float(np.interp(np.log(at), ls, g))


def probe(run: Path, n_batches: int, bn: str, root: str | None = None) -> dict:
    cfg = load_run_config(run)
    cfg.data.root = root or cfg.data.root
    mode = cfg.pseudo.mode
    _, model = load_trained(run, cfg)
    model.train(bn == "batch")
    summary = json.loads((run / TRAIN_SUMMARY).read_text())
    t0 = time.perf_counter()
    rows = landscape(model, probe_batches(cfg, n_batches), GRID, cfg)
    i = int(np.argmin(rows["ratio"]))
    sigma = summary.get("sigma")
    return {
        "run": str(run),
        "mode": mode,
        "size": [cfg.data.height, cfg.data.width],
        "channels": cfg.data.channels,
        "final_sigma": sigma,
        "argmin_s": GRID[i],
        "elasticity_at_argmin": elasticity(GRID, rows["P"], GRID[i]),
        "elasticity_at_sigma": elasticity(GRID, rows["P"], sigma) if sigma else None,
        "seconds": round(time.perf_counter() - t0, 1),
        **rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--root", help="the training data, for runs whose config has no root (zoo)")
    ap.add_argument("--bn", choices=("batch", "running"), default="batch")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    print("command: python bench/sigma_landscape.py " + " ".join(sys.argv[1:]))
    results = []
    for run in args.runs:
        r = probe(run, args.batches, args.bn, args.root)
        results.append(r)
        sig = "-" if r["final_sigma"] is None else f"{r['final_sigma']:.3f}"
        print(
            f"\n{run} ({r['mode']}, {r['size'][0]}x{r['size'][1]}, C={r['channels']}), "
            f"final sigma {sig}, {r['seconds']} s"
        )
        print("  s      P       N       N/s     ratio")
        for s, p, n, q in zip(r["s"], r["P"], r["N"], r["ratio"], strict=True):
            print(f"  {s:.2f}  {p:.4f}  {n:.4f}  {n / s:.4f}  {q:.4f}")
        el = r["elasticity_at_sigma"]
        print(
            f"  smallest ratio at s = {r['argmin_s']:.2f} (elasticity of P there "
            f"{r['elasticity_at_argmin']:.2f})"
            + ("" if el is None else f"; elasticity of P at the final sigma {el:.2f}")
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
