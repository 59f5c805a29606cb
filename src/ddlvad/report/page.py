"""``ddlvad report --run DIR``: plots under DIR/plots/ and a self-contained DIR/report.html.

The page inlines every image as a base64 data URI, so it opens from disk with no server
and can be mailed as one file. Sections: metrics and protocol, ROC curves, one score
timeline per test video (ground-truth anomalies shaded), the sigma(l) trajectory (Figure 5),
pseudo-anomaly examples (Figure 4) and, with ``--compare OTHER_RUN``, reconstructions with
vs without DDL (Figures 7/8), then the resolved config. Numbers come from the run's
metrics.json and scores.csv (``ddlvad test`` writes them; ``Run.report`` runs it first when
they are missing), post-processed under the protocol metrics.json records.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ddlvad.config import Config
from ddlvad.io import atomic_write_text
from ddlvad.report.plots import plot_roc, plot_score_timeline, plot_sigma_trajectory, read_sigma
from ddlvad.rundir import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    PLOTS,
    REPORT,
    SCORES,
    SIGMA_CSV,
    SIGMA_PLOT,
    load_run_config,
    load_threshold,
    read_health,
)
from ddlvad.scoring.evaluate import read_scores_csv
from ddlvad.scoring.outputs import check_outputs
from ddlvad.scoring.post import ScorePipeline, ranges_of
from ddlvad.scoring.protocol import ScoreProtocol

METRIC_ROWS = [
    ("frame_auc_micro", "frame AUC, micro (final scores)", "pct"),
    ("frame_auc_macro", "frame AUC, macro (mean over videos)", "pct"),
    ("frame_auc_micro_normalized", "frame AUC, micro, per-video min-max", "pct"),
    ("frame_auc_micro_unnormalized", "frame AUC, micro, no normalisation", "pct"),
    ("frame_auc_micro_unsmoothed", "frame AUC, micro, raw (no median filter)", "pct"),
    ("eer", "EER", "f3"),
    ("ap", "AP", "f3"),
    ("pixel_auc", "pixel AUC", "pct"),
    ("frames", "test frames", "int"),
    ("anomalous_frames", "anomalous frames", "int"),
    ("macro_videos", "videos in the macro mean", "int"),
]
CSS = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3;text-align:left}img{max-width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:6px}
.note{color:#865;font-style:italic}pre{background:#f6f6f6;padding:8px;font-size:.8em}"""


def parse_frames(text: str) -> list[tuple[str, int]]:
    """``"01:40,03:12"`` -> [("01", 40), ("03", 12)]."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        video, sep, frame = item.rpartition(":")
        if not sep or not video or not frame.isdigit():
            raise ValueError(f"--frames expects VIDEO:FRAME[,VIDEO:FRAME...], got {item!r}")
        out.append((video, int(frame)))
    return out


def check_frames(frames: list[tuple[str, int]], scores: dict) -> None:
    """ValueError naming the valid range when a --frames item is past its video's end (an
    unknown video is left to the compare panel, which notes it)."""
    for video, t in frames:
        if video not in scores:
            continue
        n = len(scores[video]["frame"])
        if not 0 <= t < n:
            raise ValueError(
                f"--frames {video}:{t}: frame out of range; video {video} has frames 0..{n - 1}"
            )


def stale_note(run_dir: Path, metrics: dict) -> str:
    """A note (and a warning) when the run's checkpoint is no longer the one metrics.json
    scored, e.g. training went on after ``ddlvad test``; empty otherwise."""
    scored = (metrics.get("checkpoint") or {}).get("sha256")
    path = run_dir / CHECKPOINT
    if not scored or not path.is_file():
        return ""
    if hashlib.sha256(path.read_bytes()).hexdigest() == scored:
        return ""
    step = (metrics.get("checkpoint") or {}).get("step")
    text = (
        f"{run_dir / METRICS} scored the checkpoint of step {step}; {path} has changed since "
        f"(training went on?): these metrics are not the current model's; run `ddlvad test "
        f"--run {run_dir}` again"
    )
    warnings.warn(text, RuntimeWarning, stacklevel=2)
    return f'<p class="note">{html.escape(text)}</p>'


def img_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG inlined as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _fmt(v, kind: str) -> str:
    if v is None:
        return "n/a"
    return {"pct": f"{100 * v:.2f}", "f3": f"{v:.3f}", "int": f"{int(v)}"}[kind]


def metrics_table(metrics: dict, other: dict | None, names: tuple[str, str]) -> str:
    head = f"<tr><th>metric</th><th>{html.escape(names[0])}</th>"
    head += f"<th>{html.escape(names[1])}</th></tr>" if other else "</tr>"
    rows = [head]
    for key, label, kind in METRIC_ROWS:
        cells = f"<td>{label}</td><td>{_fmt(metrics.get(key), kind)}</td>"
        if other:
            cells += f"<td>{_fmt(other.get(key), kind)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table><p>AUCs in %.</p>"


def protocol_table(protocol: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in protocol.items()
    )
    return f"<table><tr><th>protocol</th><th>value</th></tr>{rows}</table>"


def metrics_protocol(cfg: Config, metrics: dict) -> ScoreProtocol:
    """The protocol that produced metrics.json (the config's for fields it does not record)."""
    return ScoreProtocol.from_record(metrics.get("protocol") or {}, ScoreProtocol.from_config(cfg))


def clear_plots(plots: Path) -> None:
    """Remove the PNGs a previous report wrote, so plots/ matches the new page."""
    for pattern in ("timeline_*.png", "roc.png", "fig4_*.png", "fig7_*.png"):
        for old in plots.glob(pattern):
            old.unlink()


def timelines(scores: dict, metrics: dict, plots: Path, max_videos: int) -> list[Path]:
    names = list(scores)[: max_videos or None]
    per_video = metrics.get("per_video_auc", {})
    out = []
    for name in names:
        s = scores[name]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        lab = s["label"] if (s["label"] >= 0).all() else None
        out.append(
            plot_score_timeline(
                name,
                s["raw"],
                s["smoothed"],
                lab,
                plots / f"timeline_{safe}.png",
                auc=per_video.get(name),
            )
        )
    return out


def _ranges(flags: np.ndarray, frames: np.ndarray) -> str:
    return ", ".join(f"{frames[a]}-{frames[b]}" for a, b in ranges_of(flags)) or "none"


def alerts_section(run_dir: Path, scores: dict, protocol: ScoreProtocol) -> str:
    """The alert threshold (threshold.json, with how it was chosen) and, per video, the
    frame ranges whose alert score (median-filtered raw score, as ``predict`` on files)
    is above it, beside the labelled anomalous ranges."""
    calib = load_threshold(run_dir)
    if calib is None:
        return "<p>No threshold.json: no alerts (<code>ddlvad calibrate</code>).</p>"
    thr, how = calib["threshold"], calib.get("method", "quantile")
    detail = (
        f"at most {calib['alarms_per_hour']} false alarms per hour of normal footage"
        if how == "alarms_per_hour"
        else f"the {calib.get('quantile')} quantile of normal frames' alert scores"
    )
    pipe = ScorePipeline(protocol)
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        f"<td>{_ranges(pipe.alert(s['raw']) > thr, s['frame'])}</td>"
        f"<td>{_ranges(s['label'] > 0, s['frame']) if (s['label'] >= 0).all() else '-'}</td></tr>"
        for name, s in scores.items()
    )
    return (
        f"<p>Threshold {thr:.6g} ({html.escape(detail)}). Frame ranges above it:</p>"
        "<table><tr><th>video</th><th>alerts</th><th>labelled anomalous</th></tr>"
        f"{rows}</table>"
    )


def roc_png(scores: dict, protocol: ScoreProtocol, plots: Path) -> Path:
    """ROC curves of the frames pooled: raw, smoothed, smoothed + per-video min-max."""
    vids = [s for s in scores.values() if (s["label"] >= 0).all()]
    y = np.concatenate([s["label"] for s in vids])
    post = ScorePipeline(protocol)
    curves = {
        "raw": (y, np.concatenate([s["raw"] for s in vids])),
        "no normalisation": (y, np.concatenate([post.final(s["raw"], False) for s in vids])),
        "per-video min-max": (y, np.concatenate([post.final(s["raw"], True) for s in vids])),
    }
    return plot_roc(curves, plots / "roc.png")


def guarded(title: str, make: Callable[[], str]) -> str:
    """Run an optional section; a missing input becomes a note instead of a failed report."""
    try:
        return make()
    except (ValueError, FileNotFoundError) as e:
        return f'<p class="note">{html.escape(title)} not drawn: {html.escape(str(e))}</p>'


def sigma_section(run_dir: Path, plots: Path) -> str:
    path = run_dir / SIGMA_CSV
    if not path.exists() or not read_sigma(path)[1]:
        raise ValueError(f"{path}: no sigma rows (the run is not a DDL run, or has not trained)")
    png = plot_sigma_trajectory(path, run_dir / SIGMA_PLOT)
    return img_tag(png, "sigma trajectory")


def fig4_section(run_dir: Path, cfg: Config, plots: Path, clips: int, progress: bool) -> str:
    from ddlvad.report.panels import plot_pseudo_panel, pseudo_anomaly_examples

    ex = pseudo_anomaly_examples(run_dir, cfg, clips, progress=progress)
    png = plot_pseudo_panel(ex, plots / "fig4_pseudo_anomalies.png")
    return (
        f"<p>Training clips (video:centre frame) with a tracked-object mask; X_A made with "
        f"the run's sigma = {ex['sigma']:.3f} and fixed-seed noise. Residual columns share "
        f"one colour scale per row.</p>" + img_tag(png, "Figure 4 panel")
    )


def compare_section(
    run_dir: Path, cfg: Config, plots: Path, other: Path, frames: list | None, scores: dict
) -> str:
    from ddlvad.report.panels import compare_examples, pick_compare_frames, plot_compare_panel

    frames = frames or pick_compare_frames(scores)
    if not frames:
        raise ValueError(f"{run_dir / SCORES}: no anomalous test frame to show")
    ex = compare_examples(run_dir, cfg, other, frames)
    names = (f"other ({other.name})", f"this ({run_dir.name})")
    png = plot_compare_panel(ex, plots / "fig7_compare.png", names)
    return (
        f"<p>Test frames (video:frame). Other run: <code>{html.escape(str(other))}</code>, "
        f"pseudo.mode {html.escape(load_run_config(other).pseudo.mode)}; this run: "
        f"pseudo.mode {html.escape(cfg.pseudo.mode)}.</p>" + img_tag(png, "Figure 7/8 panel")
    )


def header(
    run_dir: Path, cfg: Config, metrics: dict, other_metrics: dict | None, other: Path | None
) -> str:
    """Title, metrics table (beside the compared run's when it has metrics.json), protocol."""
    names = (run_dir.name, other.name if other else "")
    return (
        f"<h1>ddlvad report: {html.escape(cfg.name)}</h1><p>run <code>"
        f"{html.escape(str(run_dir.resolve()))}</code>; written "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}</p>"
        + "<h2>Metrics</h2>"
        + health_line(run_dir)
        + metrics_table(metrics, other_metrics, names)
        + protocol_table(metrics.get("protocol", {}))
    )


def health_line(run_dir: Path) -> str:
    """The run's label-free health (``ddlvad check``), when it has been checked."""
    h = read_health(run_dir)
    if not h or h.get("health") is None:
        return "<p>Health: not checked (<code>ddlvad check --run RUN</code>).</p>"
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in h.get("kinds", {}).items())
    return (
        f"<p>Health (from normal footage only, <code>ddlvad check</code>): "
        f"<b>{h['health']:.3f}, {html.escape(h.get('verdict', ''))}</b> ({html.escape(kinds)})"
        f"</p>"
    )


def build_report(
    run_dir: str | Path,
    *,
    compare: str | Path | None = None,
    frames: list[tuple[str, int]] | None = None,
    clips: int = 3,
    max_videos: int = 0,
    progress: bool = True,
    cfg: Config | None = None,
) -> Path:
    """Write ``run_dir/plots/*.png`` and ``run_dir/report.html`` from the run's test results
    (metrics.json, scores.csv); returns the HTML path. ``cfg``: the run's config with where
    its data is, when config.yaml names none (a shipped model's copy)."""
    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    for name in (METRICS, SCORES):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name}: no {name}; run `ddlvad test` first")
    metrics = check_outputs(run_dir)  # scores.csv and metrics.json written together
    scores = read_scores_csv(run_dir / SCORES)
    if frames:
        check_frames(frames, scores)
    plots = run_dir / PLOTS
    clear_plots(plots)
    protocol = metrics_protocol(cfg, metrics)
    other = Path(compare) if compare else None
    other_metrics = None
    if other is not None and (other / METRICS).exists():
        other_metrics = json.loads((other / METRICS).read_text())
    parts = [
        header(run_dir, cfg, metrics, other_metrics, other) + stale_note(run_dir, metrics),
        "<h2>ROC</h2>" + guarded("ROC", lambda: img_tag(roc_png(scores, protocol, plots), "ROC")),
        "<h2>Score timelines</h2><p>Grey: raw patch-max score; blue: final score; red: "
        "ground-truth anomalous frames.</p><div class='grid'>"
        + "".join(img_tag(p, p.stem) for p in timelines(scores, metrics, plots, max_videos))
        + "</div>",
        "<h2>Alerts</h2>" + guarded("alerts", lambda: alerts_section(run_dir, scores, protocol)),
        "<h2>sigma(l) trajectory (Figure 5)</h2>"
        + guarded("sigma trajectory", lambda: sigma_section(run_dir, plots)),
        "<h2>Pseudo-anomalies (Figure 4)</h2>"
        + guarded("Figure 4", lambda: fig4_section(run_dir, cfg, plots, clips, progress)),
    ]
    if other is not None:
        parts.append(
            "<h2>With vs without DDL (Figures 7/8)</h2>"
            + guarded(
                "Figure 7/8", lambda: compare_section(run_dir, cfg, plots, other, frames, scores)
            )
        )
    parts.append(
        "<h2>Resolved config</h2><p>config.yaml of the run; the score settings behind the "
        "metrics above are those in the protocol table.</p><pre>"
        + html.escape((run_dir / CONFIG).read_text())
        + "</pre>"
    )
    return atomic_write_text(run_dir / REPORT, page(cfg.name, parts))


def page(title: str, parts: list[str]) -> str:
    """A complete HTML document: inline CSS, no external resources."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>ddlvad report: {html.escape(title)}</title><style>{CSS}</style></head>"
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
