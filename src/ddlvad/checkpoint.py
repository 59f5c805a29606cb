"""Checkpoints: atomic save, ``weights_only=True`` load, refusal of a foreign config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ddlvad.config import Config
from ddlvad.io import atomic_write


class CheckpointMismatch(ValueError):
    """The checkpoint was trained under a config whose model-defining keys differ."""


def save_checkpoint(path: str | Path, cfg: Config, **state: Any) -> None:
    """state: model, creator, optim, sched (objects with state_dict), epoch, step (ints)."""
    blob: dict[str, Any] = {"model_key": cfg.model_key(), "fingerprint": cfg.fingerprint()}
    for k, v in state.items():
        blob[k] = v.state_dict() if hasattr(v, "state_dict") else v
    blob["rng"] = torch.get_rng_state()
    atomic_write(path, lambda tmp: torch.save(blob, tmp))


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r} vs config {vb!r}")
    return out


def load_checkpoint(path: str | Path, cfg: Config | None = None) -> dict[str, Any]:
    """Load safely (tensors and plain containers only); check it matches ``cfg``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable ddlvad checkpoint ({e})") from e
    if not isinstance(ck, dict) or "model" not in ck or "model_key" not in ck:
        raise ValueError(f"{path}: not a ddlvad checkpoint (missing model / model_key)")
    if cfg is not None and ck.get("fingerprint") != cfg.fingerprint():
        diffs = _diff(ck["model_key"], cfg.model_key())
        raise CheckpointMismatch(
            f"{path}: checkpoint is from another config; differs in: " + "; ".join(diffs)
        )
    return ck
