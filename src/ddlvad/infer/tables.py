"""predict's two tables, scores.csv and alerts.csv: their columns and rows, in one place for
the whole-file writer (``predict``) and the incremental one (``live``)."""

from __future__ import annotations

from typing import Any

SCORE_COLUMNS = ["video", "frame", "time_s", "raw", "smoothed", "alert"]
ALERT_COLUMNS = ["video", "start_frame", "end_frame", "start_s", "end_s", "frames", "peak"]


def fmt_t(t: float) -> str:
    return "" if t != t else f"{t:.3f}"  # NaN -> empty


def score_row(video: str, frame: int, t: float, raw: float, s: float, alert: bool) -> list:
    return [video, frame, fmt_t(t), f"{raw:.6g}", f"{s:.6g}", int(alert)]


def alert_row(video: str, a: dict[str, Any]) -> list:
    return [
        video,
        a["start_frame"],
        a["end_frame"],
        fmt_t(a["start_s"]),
        fmt_t(a["end_s"]),
        a["frames"],
        f"{a['peak']:.6g}",
    ]
