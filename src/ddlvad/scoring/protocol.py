"""The scoring protocol: every choice that turns reconstruction error into frame scores, as
one object, ``ScoreProtocol``, which the engine (``ddlvad.scoring.engine``) applies in order:

    frame --gain--> T-window (edge rule) --network--> error map --patch max--> raw score
    raw score --post-processing steps (median)--> alert score   (threshold.json's threshold)
    alert score --per-video min-max (normalize; ``ddlvad test`` only)--> final score

error map e = ||X^t - f(X)||_2 ** ``power`` over channels (B, H, W) (the paper: power 1; power
2, the squared error, weighs a few large errors above many small ones); frame score = the
highest mean over a grid of ``patch`` x ``patch`` cells (``shifted``: also over the grid
shifted by patch/2); ``median``: the median filter window (17 in the paper, 0 = off);
``normalize``: per-video min-max of the final scores; ``edge``: how the first and last T//2
frames (no full T-window) are scored (``EDGE_RULES``); ``gain``: frames in the running
brightness mean that calibrates footage to the training footage's (``ddlvad.scoring.gain``, 0
= off); ``stride``: the network scores every ``stride``-th frame (frame 0, k, 2k, ...; under
``copy`` also the first full window); the frames between two scored frames take the linear mix
of their scores and error maps (so a live stream's frames wait for the next scored frame: up
to stride - 1 frames more latency), the frames after the last one hold its score (1 = every
frame).

A protocol comes from a config (``from_config``: ``cfg.score``) or from a verb's flags
(``replace``). Its record (``record``: the fields as a flat dict) is written into
threshold.json (top level, beside the threshold: the alert score's protocol), metrics.json
(under ``protocol``) and a zoo card (``metrics.protocol``), and read back with
``from_record``: a field a record lacks (files written before the field existed) takes the
value of the protocol it is read against, so older files load as they always did.

This module imports neither torch nor numpy (``ddlvad --help`` and the zoo read it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ddlvad.config import Config

EDGE_RULES = {
    "clamp": "edge frames are scored from clips whose missing neighbours repeat the nearest frame",
    "copy": "only full T-windows are scored; each edge frame copies the nearest full-window score",
}


def check_edge(edge: str) -> None:
    if edge not in EDGE_RULES:
        raise ValueError(f"score.edge must be one of {sorted(EDGE_RULES)}, got {edge!r}")


def check_patch(patch: int, height: int, width: int, shifted: bool = False) -> None:
    """The plain grid needs 1 <= patch <= min(H, W); the shifted one starts patch//2 px in."""
    m = min(height, width)
    if not 1 <= patch <= m or (shifted and patch > m - patch // 2):
        rule = "min(H, W) - patch // 2 with the shifted grid" if shifted else "min(H, W)"
        raise ValueError(
            f"score.patch = {patch} does not fit {height}x{width} frames; need 1 <= patch <= {rule}"
        )


@dataclass(frozen=True)
class ScoreProtocol:
    """Every ``score.*`` choice that changes a run's numbers (field order: ``cfg.score``'s).

    To add a step: a field here, read from ``cfg.score`` by ``from_config``, and its step
    object in ``ddlvad.scoring.post`` (``post_steps``); records without the field read as
    the protocol they are compared with."""

    patch: int = 16
    shifted: bool = False
    median: int = 17
    normalize: bool = False
    edge: str = "clamp"
    gain: int = 0
    stride: int = 1
    power: int = 1

    def __post_init__(self) -> None:
        check_edge(self.edge)
        for name, low in (("patch", 1), ("median", 0), ("gain", 0), ("stride", 1), ("power", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"score.{name} must be an integer >= {low}, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, cfg: Config) -> ScoreProtocol:
        """The protocol ``cfg.score`` describes."""
        return cls(**{k: getattr(cfg.score, k) for k in cls.names()})

    @classmethod
    def from_record(cls, record: Mapping[str, Any], default: ScoreProtocol) -> ScoreProtocol:
        """A written record; the fields it lacks are ``default``'s."""
        return default.replace(**{k: record[k] for k in cls.names() if k in record})

    def replace(self, **changes: Any) -> ScoreProtocol:
        """A copy with ``changes`` (a verb's flags; ``None`` values are left alone)."""
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ValueError(f"unknown score protocol keys {sorted(unknown)}; {self.names()}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def record(self) -> dict[str, Any]:
        """The fields as a flat dict, as written into threshold.json, metrics.json, cards."""
        return asdict(self)

    def alert(self) -> ScoreProtocol:
        """The alert score's protocol: never min-max normalised (a stream has no whole video),
        as calibrated into threshold.json and compared with ``--threshold`` levels."""
        return self.replace(normalize=False)

    def differences(self, other: ScoreProtocol) -> list[str]:
        """``"patch 4 vs 8"`` for each field where ``self`` and ``other`` differ."""
        return [
            f"{k} {getattr(self, k)} vs {getattr(other, k)}"
            for k in self.names()
            if getattr(self, k) != getattr(other, k)
        ]

    def describe(self) -> str:
        """``"patch 8, shifted False, ..., gain 0"`` (the alert score's fields for an alert
        protocol, every field otherwise; ``stride`` and ``power`` only when they are not 1)."""
        hidden = {
            "normalize": not self.normalize, "stride": self.stride == 1, "power": self.power == 1
        }  # fmt: skip
        keys = [k for k in self.names() if not hidden.get(k)]
        return ", ".join(f"{k} {getattr(self, k)}" for k in keys)

    def apply(self, cfg: Config) -> Config:
        """A copy of ``cfg`` whose ``score.*`` fields are this protocol's."""
        out = copy.deepcopy(cfg)
        for k, v in self.record().items():
            setattr(out.score, k, v)
        return out
