"""``ddlvad predict --run DIR INPUT``: score footage with a trained run; scores, alerts, overlay.

INPUT is a video file, a folder of frames (one video), a folder of video files and/or frame
sub-folders (one video each), or a live stream: a camera index (``0``), an RTSP/HTTP URL, or
a video file with ``--live``. Preprocessing is the run's (config.yaml): the same resize, gray
conversion, T-frame windows, edge rule, patch-max score and median filter as ``ddlvad test``.

Outputs in OUT (default ``RUN/predict/<input name>``):
  scores.csv   video, frame, time_s, raw, smoothed, alert
  alerts.csv   video, start_frame, end_frame, start_s, end_s, frames, peak   (inclusive ranges)
  summary.json settings, threshold and its source, speed, per-video alert ranges
  overlay[_<video>].mp4 with ``--overlay``
``smoothed`` is the alert score: the median-filtered raw score, never min-max normalised (a
threshold must mean the same on every video). Files use the centred filter of ``ddlvad
test``; live streams a causal one (see ``ddlvad.infer.live``). ``alert`` = smoothed > threshold,
where the threshold is ``--threshold`` or the run's calibrated ``threshold.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ddlvad.data.sources import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    SourceError,
    VideoFile,
    natural_key,
    open_source,
    warn_source,
)
from ddlvad.infer import INPUT_HELP
from ddlvad.infer.detector import Detector
from ddlvad.infer.overlay import OverlayWriter
from ddlvad.infer.tables import ALERT_COLUMNS, SCORE_COLUMNS, alert_row, score_row
from ddlvad.io import atomic_write_json, atomic_write_text, json_safe
from ddlvad.rundir import check_predict_out, predict_dir, safe_name
from ddlvad.scoring.engine import Scored
from ddlvad.scoring.post import ranges_of

Row = tuple[int, float, float, float, bool]  # frame, time_s (nan if unknown), raw, smoothed, alert


def resolve_input(text: str, live: bool = False) -> tuple[str, Any]:
    """("live", camera index | URL | file) or ("files", [(video name, path), ...])."""
    if text.isdigit():
        return "live", int(text)
    if "://" in text:
        return "live", text
    p = Path(text)
    if not p.exists():
        raise SourceError(f"{p}: not found; expected {INPUT_HELP}")
    if p.is_file():
        if live:
            return "live", str(p)
        open_source(p)  # SourceError for an unknown type or an undecodable file
        return "files", [(p.stem, p)]
    if live:
        raise SourceError(f"{p}: --live takes a video file, camera index or URL, not a folder")
    kids = sorted(p.iterdir(), key=lambda q: natural_key(q.name))
    visible = [q for q in kids if not q.name.startswith(".")]
    if any(q.is_file() and q.suffix.lower() in IMAGE_EXTS for q in visible):
        return "files", [(p.name, p)]
    videos = [
        q
        for q in visible
        if (q.is_file() and q.suffix.lower() in VIDEO_EXTS)
        or (q.is_dir() and any(f.suffix.lower() in IMAGE_EXTS for f in q.iterdir()))
    ]
    if not videos:
        raise SourceError(
            f"{p}: no frames or videos found; expected image files ({'/'.join(IMAGE_EXTS)}), "
            f"video files ({'/'.join(VIDEO_EXTS)}) or sub-folders of frames"
        )
    stems = [q.stem for q in videos]
    names = stems if len(set(stems)) == len(stems) else [q.name for q in videos]
    return "files", list(zip(names, videos, strict=True))


def predict_file(
    det: Detector,
    path: Path,
    *,
    fps: float | None = None,
    overlay: Path | None = None,
    progress: bool = False,
) -> tuple[list[Row], dict[str, Any]]:
    """Score one video file or frame folder; rows and a speed summary (with ``warnings``
    about the input, and ``interrupted`` when Ctrl-C stopped it: rows then hold the frames
    scored so far). ``progress``: a bar over the frames read."""
    src = open_source(path)
    expected = len(src)  # a video's container count (may be wrong), a folder's exact count
    fps = fps or src.fps
    sc = det.scorer(keep_error=overlay is not None)
    ov = _OverlayStage(det, overlay, fps) if overlay else None
    raw: list[float] = []

    def take(results: list[Scored]) -> None:
        raw.extend(r.raw for r in results)
        if ov is not None:
            ov.add(results)

    t0 = time.perf_counter()
    interrupted = False
    bar = tqdm(total=expected, desc=path.name, unit="frame", disable=not progress, leave=False)
    try:
        for img in src:
            bar.update()
            sc.push(det.prepare(img), img if ov else None)
            if sc.ready():
                take(sc.run())
        take(sc.finish())
        if ov is not None:
            ov.finish()
    except KeyboardInterrupt:
        interrupted = True  # keep the frames scored so far (a prefix of the video)
    finally:
        bar.close()
        if ov is not None:
            ov.writer.close()
    if not raw:
        if interrupted:
            raise KeyboardInterrupt
        raise SourceError(f"{path}: no decodable frames")
    sec = time.perf_counter() - t0
    rows = _rows(raw, det, fps)
    stats = {"frames": len(raw), "seconds": round(sec, 2), "fps": round(len(raw) / sec, 1)}
    stats["frame_rate"] = fps  # None for a frame folder without --fps: time_s stays empty
    if ov is not None:
        stats["overlay_codec"] = ov.writer.codec
    if interrupted:
        stats["interrupted"] = True
    elif isinstance(src, VideoFile) and len(raw) < expected:
        stats["frames_expected"] = expected
    _input_warnings(path, stats, det.T)
    return rows, stats


def _input_warnings(path: Path, stats: dict[str, Any], T: int) -> None:
    """Warn about input that scores badly, and record the warnings in ``stats``."""
    n, notes = stats["frames"], []
    if "frames_expected" in stats:
        notes.append(
            f"{path}: decoded {n} of the {stats['frames_expected']} frames its container "
            f"declares (a truncated or damaged file?); scored the {n} read"
        )
    if n < T:
        notes.append(
            f"{path}: {n} frame(s), fewer than the model's {T}-frame window: every window "
            f"repeats frames (edge rule), so its scores are unreliable"
        )
    warn_source(notes, stats)


class _OverlayStage:
    """Holds scored frames until their centred median is known, then draws them."""

    def __init__(self, det: Detector, path: Path, fps: float | None) -> None:
        self.det, self.fps = det, fps
        self.writer = OverlayWriter(path, fps or 25.0, det.threshold)
        self.med = det.pipeline.stream()  # the alert score, centred as on the whole file
        self.held: dict[int, Scored] = {}

    def add(self, results: list[Scored]) -> None:
        for r in results:
            self.held[r.index] = r
            self._draw(self.med.push(r.raw))

    def finish(self) -> None:
        self._draw(self.med.finish())

    def _draw(self, ready: list[tuple[int, float]]) -> None:
        thr = self.det.threshold
        for i, s in ready:
            r = self.held.pop(i)
            t = i / self.fps if self.fps else None
            self.writer.write(r.meta, r.error, i, s, thr is not None and s > thr, t)


def _rows(raw: list[float], det: Detector, fps: float | None) -> list[Row]:
    sm = det.smooth(np.asarray(raw, dtype=np.float32))
    thr = det.threshold
    nan = float("nan")
    return [
        (i, i / fps if fps else nan, r, float(s), thr is not None and s > thr)
        for i, (r, s) in enumerate(zip(raw, sm, strict=True))
    ]


def scores_text(results: dict[str, list[Row]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(SCORE_COLUMNS)
    for name, rows in results.items():
        for f, t, r, s, a in rows:
            w.writerow(score_row(name, f, t, r, s, a))
    return buf.getvalue()


def find_alerts(rows: list[Row]) -> list[dict[str, Any]]:
    """Inclusive ranges of consecutive alert rows, with times and the peak score."""
    out = []
    for a, b in ranges_of([r[4] for r in rows]):
        out.append(
            {
                "start_frame": rows[a][0],
                "end_frame": rows[b][0],
                "start_s": rows[a][1],
                "end_s": rows[b][1],
                "frames": b - a + 1,
                "peak": max(r[3] for r in rows[a : b + 1]),
            }
        )
    return out


def alerts_text(alerts: dict[str, list[dict[str, Any]]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(ALERT_COLUMNS)
    for name, items in alerts.items():
        for a in items:
            w.writerow(alert_row(name, a))
    return buf.getvalue()


def write_outputs(
    out: Path, results: dict[str, list[Row]], summary: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """scores.csv, alerts.csv and summary.json in ``out`` (each written atomically)."""
    alerts = {name: find_alerts(rows) for name, rows in results.items()}
    atomic_write_text(out / "scores.csv", scores_text(results))
    atomic_write_text(out / "alerts.csv", alerts_text(alerts))
    atomic_write_json(out / "summary.json", {**summary, "alerts": json_safe(alerts)})
    return alerts


def output_dir(args: argparse.Namespace) -> Path:
    """predict's output folder: ``--out``, else ``RUN/predict/<input name>``
    (``rundir.predict_dir``); refused when it resolves to the run folder or above it, or,
    for a model entry read in place, inside the model folder (``rundir.check_predict_out``)."""
    out = Path(args.out) if args.out else predict_dir(args.run, args.input)
    return check_predict_out(out, args.run, inside_ok=not getattr(args, "read_only", False))


def _predict_live(args, det: Detector, target: int | str, out: Path, log) -> tuple[dict, dict]:
    """Score a stream, writing scores.csv and alerts.csv as it goes; ({name: alert
    ranges}, {name: stats})."""
    from ddlvad.infer.live import run_live

    is_file = isinstance(target, str) and "://" not in target
    pace = (args.fps or open_source(target).fps or 25.0) if is_file else None  # play in real time
    name = safe_name(Path(target).name if is_file else str(target))
    alerts, stats = run_live(
        det,
        target,
        max_frames=args.max_frames,
        max_queue=args.max_queue,
        pace=pace,
        overlay=out / "overlay.mp4" if args.overlay else None,
        out=out,
        video=name,
        give_up_s=args.give_up,
        log=log,
    )
    return {name: alerts}, {name: stats}


def _predict_files(args, det: Detector, videos: list, out: Path, log) -> tuple[dict, dict]:
    results, stats = {}, {}
    for name, path in videos:
        ov = out / ("overlay.mp4" if len(videos) == 1 else f"overlay_{name}.mp4")
        rows, st = predict_file(
            det,
            path,
            fps=args.fps or None,
            overlay=ov if args.overlay else None,
            progress=not args.quiet,
        )
        results[name], stats[name] = rows, st
        log(f"{name}: {st['frames']} frames in {st['seconds']} s ({st['fps']} fps)")
        if st.get("interrupted"):
            break  # Ctrl-C: keep what was scored, score no further video
        if st["frame_rate"] is None:
            log(f"{name}: no frame rate (a frame folder): time_s left empty; pass --fps to set it")
    return results, stats


def run_predict(args: argparse.Namespace, det: Detector, kind: str, target: Any) -> int:
    """The predict verb's work on parsed arguments (see ``ddlvad.cli.predict``) with ``det``
    on the input ``resolve_input`` found (``kind``, ``target``). Returns the exit status:
    130 when Ctrl-C stopped the scoring of files (the frames scored so far are written)."""
    out = output_dir(args)
    log = (lambda s: None) if args.quiet else print
    if det.threshold is None:
        print("ddlvad predict: no threshold (no --threshold and no threshold.json): alerts off")
    summary: dict[str, Any] = {
        "input": args.input,
        "run": str(args.run),
        "mode": kind,
        "backend": args.backend,
        "precision": det.forward.precision,
        "engine": det.engine,
        "threshold": det.threshold,
        "threshold_source": det.threshold_source,
        "median": det.protocol.median,
        "stride": det.protocol.stride,  # the network scored every stride-th frame
        "median_rule": "causal (last N scores)" if kind == "live" else "centred (as ddlvad test)",
        "batch_size": det.batch_size,
        "checkpoint": det.checkpoint,  # the weights scored: file, epoch, step, sha256
    }
    if kind == "live":  # scores.csv and alerts.csv are written as the stream is scored
        alerts, summary["videos"] = _predict_live(args, det, target, out, log)
        atomic_write_json(out / "summary.json", {**summary, "alerts": json_safe(alerts)})
    else:
        results, summary["videos"] = _predict_files(args, det, target, out, log)
        alerts = write_outputs(out, results, summary)
    for name, items in alerts.items():
        ranges = ", ".join(f"{a['start_frame']}-{a['end_frame']}" for a in items) or "none"
        log(f"{name}: alerts (frames, inclusive) {ranges}")
    codecs = sorted({str(st.get("overlay_codec")) for st in summary["videos"].values()})
    extra = f" and the overlay video ({', '.join(codecs)})" if args.overlay else ""
    log(f"wrote {out}/scores.csv, alerts.csv, summary.json{extra}")
    if kind == "files" and any(st.get("interrupted") for st in summary["videos"].values()):
        n = sum(len(rows) for rows in results.values())
        print(
            f"ddlvad predict: interrupted: kept the scores of the {n} frames scored so far "
            f"in {out}",
            file=sys.stderr,
        )
        return 130
    return 0
