"""The alert threshold by target: at most N false alarms per hour of normal footage.

A site thinks in false alarms per hour, not in score quantiles. ``threshold_for_rate``
scores normal footage as ``serve`` does (the detector's engine; the causal live median),
counts the alerts the alert rule (``rules.AlertRule``: minimum event length, cooldown,
longest event) raises at each candidate threshold, from the highest score down, and keeps
the lowest threshold that raises at most ``alarms_per_hour * hours`` alerts on it. On short
footage the budget rounds down: 1 alarm per hour on 10 minutes allows 0 alarms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from ddlvad.infer.detector import Detector
from ddlvad.serve.rules import RuleConfig, count_alerts

CANDIDATES = 2000  # thresholds tried at most (quantiles of the scores when there are more)


def live_scores(det: Detector, frames: Iterable[np.ndarray]) -> np.ndarray:
    """The alert scores ``serve`` gives one video's (h, w, 3) RGB frames: the engine's raw
    scores through the causal (live) median."""
    raw = det.score(frames)
    med = det.pipeline.stream(live=True)
    return np.array([v for x in raw for _, v in med.push(x)], dtype=np.float64)


def threshold_for_rate(
    scores: dict[str, np.ndarray],
    fps: dict[str, float],
    alarms_per_hour: float,
    rule: RuleConfig,
) -> dict[str, Any]:
    """The lowest threshold at which ``rule`` raises at most ``alarms_per_hour`` per hour
    on the videos' alert ``scores`` (at their ``fps``); the figures behind it."""
    if not scores or not any(len(s) for s in scores.values()):
        raise ValueError("calibrate: no frames to calibrate on")
    if not alarms_per_hour >= 0:
        raise ValueError(f"--alarms-per-hour must be >= 0, got {alarms_per_hour}")
    hours = sum(len(s) / fps[n] for n, s in scores.items()) / 3600
    budget = int(np.floor(alarms_per_hour * hours + 1e-9))
    flat = np.concatenate(list(scores.values()))
    cand = np.unique(flat)[::-1]
    if len(cand) > CANDIDATES:
        cand = np.unique(np.quantile(flat, np.linspace(0, 1, CANDIDATES)))[::-1]

    def alarms(thr: float) -> int:
        cfg = replace(rule, threshold=float(thr))
        return sum(count_alerts(s, fps[n], cfg) for n, s in scores.items())

    best, best_n = float(cand[0]), 0  # at the highest score nothing is above: 0 alarms
    for thr in cand[1:]:
        n = alarms(thr)
        if n > budget:
            break
        best, best_n = float(thr), n
    return {
        "threshold": best,
        "method": "alarms_per_hour",
        "alarms_per_hour": alarms_per_hour,
        "hours": round(hours, 4),
        "alarms_allowed": budget,
        "alarms_on_footage": best_n,
        "frames": int(len(flat)),
        "false_alarm_rate_on_calibration_frames": float(np.mean(flat > best)),
        "videos": len(scores),
        "rule": {k: v for k, v in rule.record().items() if k != "threshold"},
        "score": "raw patch-max score, causal (live) median, no normalisation",
    }
