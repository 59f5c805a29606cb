"""Paper-style image panels: Figure 4 (pseudo-anomalies) and Figures 7/8 (with vs without DDL).

Each figure has two halves: a function that computes the arrays from run directories
(reusing ``scoring`` and ``train``), and one that draws them. Images are
(K, H, W, C) float arrays in [0, 1]; residuals are per-pixel L2 distances over channels, the
same quantity as ``scoring.frame.error_map``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ddlvad.config import Config
from ddlvad.data.layouts import load_pixel_masks
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.report.plots import plt, save_figure
from ddlvad.rundir import load_creator, load_run_config, load_trained
from ddlvad.scoring.frame import error_map
from ddlvad.scoring.post import ranges_of
from ddlvad.scoring.reconstruct import reconstruct_frames
from ddlvad.train.data import make_clips

FIG4_COLUMNS = [
    "X^t",
    "f(X)",
    "X_A^t",
    "f(X_A)",
    "|X^t - f(X)|",
    "|X_A^t - f(X_A)|",
    "|X^t - f(X_A)|",
]


def residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K, H, W, C) x2 -> (K, H, W): L2 over channels, via ``scoring.frame.error_map``."""
    ta = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    tb = torch.from_numpy(np.ascontiguousarray(b)).permute(0, 3, 1, 2)
    return error_map(ta, tb).numpy()


def _nhwc(x: torch.Tensor) -> np.ndarray:
    """(K, C, H, W) tensor -> (K, H, W, C) float numpy."""
    return x.detach().permute(0, 2, 3, 1).float().cpu().numpy()


@torch.no_grad()
def pseudo_anomaly_examples(
    run_dir: str | Path, cfg: Config, n: int = 3, *, seed: int = 0, progress: bool = False
) -> dict:
    """Figure 4 arrays for ``n`` training clips with an object tracked through all T frames.

    X_A is made with the run's own creator state (learned sigma) and noise A drawn from a
    generator seeded with ``seed``. Returns x_t, y, xa_t, ya (K, H, W, C), mask (K, H, W),
    rows, sigma."""
    clips, _ = make_clips(cfg, progress)
    if clips.picker is None:
        raise ValueError(f"{run_dir}: pseudo.mode is 'none'; the run has no pseudo-anomalies")
    T = clips.T
    cand = [
        i
        for i, (vi, t) in enumerate(clips.index)
        if clips.picker.full_tracks(clips.names[vi], t, T)
    ]
    if not cand:
        raise ValueError(f"{run_dir}: no training clip has an object tracked through {T} frames")
    pick = sorted({cand[int(j)] for j in np.linspace(0, len(cand) - 1, n + 2).round()[1:-1]})
    items = [clips[i] for i in pick]
    X = torch.stack([b["X"] for b in items])  # (K, C, T, H, W)
    M = torch.stack([b["M"] for b in items])  # (K, 1, T, H, W)
    _, model = load_trained(run_dir, cfg, "cpu")
    creator = load_creator(run_dir, cfg)
    A = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed))
    X_A = creator(X, M, A)
    t = T // 2
    return {
        "x_t": _nhwc(X[:, :, t]),
        "y": _nhwc(model(X)),
        "xa_t": _nhwc(X_A[:, :, t]),
        "ya": _nhwc(model(X_A)),
        "mask": M[:, 0, t].numpy(),  # (K, H, W): where X_A^t differs from X^t
        "rows": [f"{clips.names[clips.index[i][0]]}:{clips.index[i][1]}" for i in pick],
        "sigma": float(creator.sigma()),
    }


def pick_compare_frames(scores: dict[str, dict[str, np.ndarray]], k: int = 3) -> list:
    """Up to k (video, frame): the middle frame of the first anomalous range, for videos
    spread evenly over those with anomalies (``scores`` as ``read_scores_csv`` returns)."""
    found = []
    for name, s in scores.items():
        ranges = ranges_of(s["label"] == 1)
        if ranges:
            a, b = ranges[0]
            found.append((name, int(s["frame"][(a + b) // 2])))
    if len(found) <= k:
        return found
    return [found[int(j)] for j in np.linspace(0, len(found) - 1, k).round()]


@torch.no_grad()
def compare_examples(
    run_dir: str | Path, cfg: Config, other_dir: str | Path, frames: list[tuple[str, int]]
) -> dict:
    """Figure 7/8 arrays: test frames x_t, f_other(X) and f_this(X), each (K, H, W, C), and
    the ground-truth pixel masks (K, H, W) where the dataset ships them."""
    other_cfg = load_run_config(other_dir)
    a, b = cfg.data, other_cfg.data
    if (a.height, a.width, a.channels) != (b.height, b.width, b.channels):
        raise ValueError(
            f"{Path(other_dir) / 'config.yaml'}: working size {b.height}x{b.width}x{b.channels} "
            f"differs from {run_dir}'s {a.height}x{a.width}x{a.channels}; runs not comparable"
        )
    recs = {r.name: r for r in open_dataset(cfg).test}
    missing = sorted({v for v, _ in frames} - set(recs))
    if missing:
        raise ValueError(f"{cfg.data.root}: test split has no video(s) {missing}")
    videos = load_videos([recs[v] for v in dict.fromkeys(v for v, _ in frames)], cfg, False)
    out: dict[str, list] = {"x_t": [], "y_this": [], "y_other": []}
    for key, rdir, rcfg in (("y_this", run_dir, cfg), ("y_other", other_dir, other_cfg)):
        _, model = load_trained(rdir, rcfg, "cpu")
        for v, t in frames:
            x_t, y = reconstruct_frames(model, videos[v], rcfg.model_T, [t])
            out[key].append(y[0])
            if key == "y_this":
                out["x_t"].append(x_t[0])
    res = {k: np.stack(v) for k, v in out.items()}
    res["mask"] = np.stack([gt_mask(recs[v], t, cfg) for v, t in frames])
    res["rows"] = [f"{v}:{t}" for v, t in frames]
    return res


def gt_mask(rec, t: int, cfg: Config) -> np.ndarray:
    """(H, W) ground-truth pixel mask of frame t at the working size; zeros when not shipped."""
    masks = load_pixel_masks(rec, cfg.data.height, cfg.data.width)
    if masks is None:
        return np.zeros((cfg.data.height, cfg.data.width), bool)
    return masks[t]


def _show(ax, img: np.ndarray, residual_vmax: float | None = None) -> None:
    if residual_vmax is not None:
        ax.imshow(img, cmap="inferno", vmin=0, vmax=residual_vmax)
    elif img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(img, 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_grid(
    images: list[list[np.ndarray]],
    columns: list[str],
    rows: list[str],
    out_png: str | Path,
    *,
    n_residual: int,
    title: str = "",
    outline: tuple[int, np.ndarray] | None = None,
) -> Path:
    """A rows x columns grid; the last ``n_residual`` columns are (H, W) residual maps drawn
    with one colour scale per row, so residuals within a row compare directly. ``outline``
    (column, (K, H, W) masks) draws each row's mask contour on that column."""
    R, Cn = len(images), len(columns)
    fig, axes = plt.subplots(R, Cn, figsize=(1.7 * Cn, 1.8 * R + 0.5), dpi=100, squeeze=False)
    for r, row in enumerate(images):
        res = row[Cn - n_residual :]
        vmax = max(float(np.max(x)) for x in res) if res else 1.0
        for c, img in enumerate(row):
            is_res = c >= Cn - n_residual
            _show(axes[r, c], img, (vmax or 1.0) if is_res else None)
            if r == 0:
                axes[r, c].set_title(columns[c], fontsize=8)
            if outline is not None and c == outline[0] and outline[1][r].any():
                axes[r, c].contour(outline[1][r], levels=[0.5], colors="cyan", linewidths=0.7)
        axes[r, 0].set_ylabel(rows[r], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_pseudo_panel(ex: dict, out_png: str | Path) -> Path:
    """Figure 4: X^t, f(X), X_A^t, f(X_A) and the three residuals, one row per clip."""
    r1 = residual(ex["x_t"], ex["y"])
    r2 = residual(ex["xa_t"], ex["ya"])
    r3 = residual(ex["x_t"], ex["ya"])
    images = [
        [ex["x_t"][k], ex["y"][k], ex["xa_t"][k], ex["ya"][k], r1[k], r2[k], r3[k]]
        for k in range(len(ex["rows"]))
    ]
    title = f"pseudo-anomalies at the learned sigma = {ex['sigma']:.3f} (cyan: mask M^t)"
    return plot_image_grid(
        images,
        FIG4_COLUMNS,
        ex["rows"],
        out_png,
        n_residual=3,
        title=title,
        outline=(2, ex["mask"]),
    )


def plot_compare_panel(
    ex: dict, out_png: str | Path, names: tuple[str, str] = ("without DDL", "with DDL")
) -> Path:
    """Figures 7/8: frame (cyan: ground-truth mask, if any), reconstructions by the other run
    and by this run, and their residuals."""
    r_other = residual(ex["x_t"], ex["y_other"])
    r_this = residual(ex["x_t"], ex["y_this"])
    cols = ["frame", f"f(X), {names[0]}", f"f(X), {names[1]}", f"|X - f(X)|, {names[0]}"]
    cols.append(f"|X - f(X)|, {names[1]}")
    images = [
        [ex["x_t"][k], ex["y_other"][k], ex["y_this"][k], r_other[k], r_this[k]]
        for k in range(len(ex["rows"]))
    ]
    return plot_image_grid(images, cols, ex["rows"], out_png, n_residual=2, outline=(0, ex["mask"]))
