"""Every config value checked when the config is built, before any work, naming the key.

A rule is ``(key, test, expected)``: ``test(value, cfg)`` is True when the value is fine and
``expected`` says what it must be. ``validate`` raises one ``ConfigError`` listing every
broken key, so a user fixes them all in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

# The config type: this module checks a ``ddlvad.config.Config`` but does not import it
# (config.py imports this module).
C = TypeVar("C")


class ConfigError(ValueError):
    """A config value out of range or of the wrong type; the message names the key."""


Rule = tuple[str, Callable[[Any, Any], bool], str]

LAYOUT_NAMES = ("auto", "frames", "ucsd", "avenue", "shanghaitech", "folder")
LAYOUT_ALIASES = ("", "ped1", "ped2", "synthetic")
MODEL_NAMES = ("c3dsu", "unet")  # the keys of ddlvad.models.MODELS (which imports torch)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int_at_least(lo: int) -> Callable[[Any, Any], bool]:
    return lambda v, c: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _in_range(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    def ok(v: Any, c: Any) -> bool:
        if not _num(v):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return ok


def _size(v: Any, c: Any) -> bool:
    return _int_at_least(16)(v, c) and v % 16 == 0


def _odd(v: Any, c: Any) -> bool:
    return _int_at_least(1)(v, c) and v % 2 == 1


def _one_of(*choices: Any) -> Callable[[Any, Any], bool]:
    return lambda v, c: v in choices


INF = math.inf
RULES: list[Rule] = [
    ("data.layout", _one_of(*LAYOUT_NAMES, *LAYOUT_ALIASES), f"one of {list(LAYOUT_NAMES)}"),
    ("data.height", _size, "a multiple of 16, >= 16 (the models down-sample 4 times by 2)"),
    ("data.width", _size, "a multiple of 16, >= 16 (the models down-sample 4 times by 2)"),
    ("data.channels", _one_of(1, 3), "1 (gray) or 3 (RGB)"),
    ("data.T", _odd, "an odd clip length >= 1 (the model reconstructs the middle frame)"),
    ("data.max_videos", _int_at_least(0), "an integer >= 0 (0 = all)"),
    ("model.name", _one_of(*MODEL_NAMES), " or ".join(MODEL_NAMES)),
    ("model.latent", lambda v, c: _int_at_least(8)(v, c) and v % 8 == 0, "a multiple of 8"),
    (
        "model.kernels",
        lambda v, c: len(v) > 0 and all(_odd(k, c) for k in v),
        "a non-empty list of odd kernel sizes",
    ),
    ("model.final_kernel", _odd, "an odd kernel size >= 1"),
    ("objects.proposer", _one_of("bgsub", "mot", "json"), "bgsub, mot or json"),
    ("objects.tracker", _one_of("ocsort", "iou", "given"), "ocsort, iou or given"),
    ("objects.min_area", _in_range(0, 1, hi_open=True), "a frame fraction in [0, 1)"),
    (
        "objects.max_area",
        lambda v, c: _in_range(0, 1, lo_open=True)(v, c) and v > c.objects.min_area,
        "a frame fraction in (0, 1], above objects.min_area",
    ),
    ("objects.diff_threshold", lambda v, c: _int_at_least(0)(v, c) and v <= 255, "0..255"),
    ("objects.iou_threshold", _in_range(0, 1), "a number in [0, 1]"),
    ("objects.scale", lambda v, c: _int_at_least(1)(v, c) and v <= 8, "an integer in [1, 8]"),
    ("pseudo.mode", _one_of("none", "static", "dynamic"), "none, static or dynamic"),
    ("pseudo.sigma", _in_range(0, 1), "a weight in [0, 1]"),
    ("pseudo.l_init", lambda v, c: _num(v), "a finite number"),
    ("pseudo.l_lr_scale", _in_range(0, INF, lo_open=True), "a factor > 0"),
    ("pseudo.no_track", _one_of("skip", "random"), "skip or random"),
    ("pseudo.margin", _in_range(0, INF), "a fraction of the box side >= 0"),
    ("loss.lam", _in_range(0, INF), "a finite number >= 0"),
    ("loss.eps", _in_range(0, INF), "a finite number >= 0"),
    ("loss.norm", _one_of("region", "pixel"), "region or pixel"),
    ("train.epochs", _int_at_least(1), "an integer >= 1"),
    ("train.batch_size", _int_at_least(1), "an integer >= 1"),
    ("train.lr", _in_range(0, INF, lo_open=True), "a finite number > 0"),
    ("train.step_frac", _in_range(0, INF, lo_open=True), "a finite number > 0"),
    ("train.gamma", _in_range(0, INF, lo_open=True), "a finite number > 0"),
    ("train.seed", _int_at_least(0), "an integer >= 0"),
    ("train.workers", _int_at_least(0), "an integer >= 0"),
    ("train.threads", _int_at_least(0), "an integer >= 0 (0 = the free cores)"),
    ("train.max_steps", _int_at_least(0), "an integer >= 0 (0 = no cap)"),
    ("train.ema", _in_range(0, 1, hi_open=True), "an EMA decay in [0, 1) (0 = off)"),
    ("train.shift", _int_at_least(0), "an integer >= 0 (pixels)"),
    (
        "score.patch",
        lambda v, c: _int_at_least(1)(v, c) and v <= min(c.data.height, c.data.width),
        "an integer in [1, min(data.height, data.width)]",
    ),
    ("score.median", _int_at_least(0), "an integer >= 0 (0 = off)"),
    ("score.batch_size", _int_at_least(1), "an integer >= 1"),
    ("score.edge", _one_of("clamp", "copy"), "clamp or copy"),
    ("score.weights", _one_of("ema", "last"), "ema or last"),
    ("score.bn", _one_of("clean", "trained"), "clean or trained"),
    ("score.gain", _int_at_least(0), "frames in the running brightness mean, >= 0 (0 = off)"),
    ("score.stride", _int_at_least(1), "an integer >= 1 (1 = every frame)"),
    ("score.power", lambda v, c: _int_at_least(1)(v, c) and v <= 4, "an integer in [1, 4]"),
    ("calib.holdout", _in_range(0, 1, hi_open=True), "a fraction in [0, 1)"),
    ("calib.quantile", _in_range(0, 1, True, True), "a quantile in (0, 1)"),
]


def _get(cfg: Any, key: str) -> Any:
    section, attr = key.split(".")
    return getattr(getattr(cfg, section), attr)


def problems(cfg: Any) -> list[str]:
    """One ``key = value: expected ...`` line per broken value (empty when all are fine)."""
    out = []
    for key, ok, expected in RULES:
        value = _get(cfg, key)
        try:
            good = ok(value, cfg)
        except (TypeError, ValueError, AttributeError):
            good = False
        if not good:
            out.append(f"{key} = {value!r}: expected {expected}")
    return out


def validate(cfg: C, source: str = "config") -> C:
    """Raise ConfigError listing every broken key; return ``cfg`` when all are fine."""
    bad = problems(cfg)
    if bad:
        raise ConfigError(f"{source}: invalid value(s): " + "; ".join(bad))
    return cfg
