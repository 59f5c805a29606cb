"""From command-line words to what ``serve`` runs: camera specs, the alert rule, zone masks.
No Starlette here: the CLI checks its input before the web stack is imported."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ddlvad.data.sources import SourceError, open_source
from ddlvad.infer.detector import Detector
from ddlvad.rundir import safe_name
from ddlvad.serve.camera import CameraSpec
from ddlvad.serve.rules import RuleConfig
from ddlvad.serve.zones import load_zones, zone_mask, zones_for

STREAM_FPS = 25.0  # clip timing for cameras and URLs without --fps


def _target(text: str) -> int | str:
    if text.isdigit():
        return int(text)
    if "://" in text:
        return text
    if not Path(text).is_file():
        raise SourceError(f"{text}: video file not found; expected a file, index or URL")
    return text


def _default_name(target: int | str) -> str:
    if isinstance(target, int):
        return f"cam{target}"
    if "://" in target:
        u = urlparse(target)
        return safe_name(u.hostname or "stream")
    return safe_name(Path(target).stem)


def camera_specs(
    sources: list[str], *, loop: bool = False, full_speed: bool = False, fps: float = 0.0
) -> list[CameraSpec]:
    """One ``CameraSpec`` per SOURCE (``NAME=SOURCE`` names it); names made unique."""
    specs, seen = [], set()
    for text in sources:
        name, sep, rest = text.partition("=")
        if not sep or "://" in name or not name:
            name, rest = "", text
        target = _target(rest)
        name = safe_name(name) if name else _default_name(target)
        base, k = name, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        if isinstance(target, str) and "://" not in target:
            src_fps = fps or open_source(target).fps or STREAM_FPS
            pace = None if full_speed else src_fps
            specs.append(CameraSpec(name, target, src_fps, pace, loop))
        else:
            specs.append(CameraSpec(name, target, fps or STREAM_FPS))
    return specs


def rule_for(det: Detector, args: argparse.Namespace) -> RuleConfig:
    """The alert rule from the run's threshold (or --threshold) and the rule options."""
    if det.threshold is None:
        raise ValueError(
            f"{args.run}: no threshold.json and no --threshold; calibrate the run first "
            f"(ddlvad calibrate --run {args.run} --alarms-per-hour 1 FOOTAGE)"
        )
    return RuleConfig(det.threshold, args.min_event, args.cooldown, args.max_event)


def masks_for(path: str, specs: list[CameraSpec], det: Detector) -> dict[str, np.ndarray | None]:
    """Each camera's error-map mask at the run's working size from the zones file."""
    zones = load_zones(path)
    H, W, _ = det.size
    unknown = set(zones) - {"*"} - {s.name for s in specs}
    if unknown:
        raise ValueError(
            f"{path}: cameras {sorted(unknown)} are not among {[s.name for s in specs]}"
        )
    return {s.name: zone_mask(zones_for(zones, s.name), H, W) for s in specs}
