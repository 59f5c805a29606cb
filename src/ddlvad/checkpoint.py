"""Checkpoints: atomic save, ``weights_only=True`` load, refusal of a foreign config, and
which of the weights a checkpoint holds are scored (the last step's or the weight EMA's)."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from ddlvad.config import Config
from ddlvad.io import atomic_write


class CheckpointMismatch(ValueError):
    """The checkpoint was trained under a config whose model-defining keys differ."""


class CheckpointRefused(ValueError):
    """Not a loadable ddlvad checkpoint: truncated, corrupt, or holding Python objects."""


def _safe_load(path: Path, data: bytes) -> Any:
    """torch.load with weights_only=True, under our own error message: torch's own advises
    retrying with weights_only=False, which would run code from the file; never do that."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # not a forbidden class: a damaged pickle
            raise CheckpointRefused(
                f"{path}: unreadable checkpoint (damaged pickle data, {len(data)} bytes); "
                f"expected a checkpoint written by ddlvad train"
            ) from None
        raise CheckpointRefused(
            f"{path}: refused: the file holds Python objects besides tensors and plain "
            f"containers, which ddlvad never loads (it could run code); expected a checkpoint "
            f"written by ddlvad train"
        ) from None
    except Exception as e:  # zip/EOF/format errors from a truncated or foreign file
        raise CheckpointRefused(
            f"{path}: unreadable checkpoint ({type(e).__name__}: truncated, corrupt or not "
            f"a torch file, {len(data)} bytes); expected a checkpoint written by ddlvad train"
        ) from None


def save_checkpoint(path: str | Path, cfg: Config, **state: Any) -> None:
    """state: model, creator, optim, sched (objects with state_dict), epoch, step (ints)."""
    blob: dict[str, Any] = {"model_key": cfg.model_key(), "fingerprint": cfg.fingerprint()}
    for k, v in state.items():
        blob[k] = v.state_dict() if hasattr(v, "state_dict") else v
    if "rng" not in blob:  # a caller may pass the RNG state to restore (mid-epoch stop)
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
    data = path.read_bytes()  # hash and load the very same bytes, even if the file is replaced
    ck = _safe_load(path, data)
    if not isinstance(ck, dict) or "model" not in ck or "model_key" not in ck:
        raise CheckpointRefused(f"{path}: not a ddlvad checkpoint (missing model / model_key)")
    ck["sha256"] = hashlib.sha256(data).hexdigest()
    if cfg is not None and ck.get("fingerprint") != cfg.fingerprint():
        diffs = _diff(ck["model_key"], cfg.model_key())
        raise CheckpointMismatch(
            f"{path}: checkpoint is from another config; differs in: " + "; ".join(diffs)
        )
    return ck


EMA_PREFIX = "module."  # torch's AveragedModel keeps the averaged copy as .module


def ema_state(ck: dict[str, Any]) -> dict[str, Any] | None:
    """The averaged model's state_dict inside a checkpoint, or None when it kept no EMA."""
    state = ck.get("ema")
    if not state:
        return None
    return {k[len(EMA_PREFIX) :]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}


def scoring_state(
    ck: dict[str, Any], weights: str, bn: str = "clean"
) -> tuple[dict[str, Any], str, str]:
    """(state_dict, weights used, BN statistics used) to score with: the EMA ("ema") when
    asked for and kept, else the last step's ("last"); with ``bn`` = "clean", their BatchNorm
    statistics as re-estimated on clean training clips when the checkpoint stores them
    (``ema_bn``, ``last_bn``; see ``train.ema.refresh_run``), else "trained"."""
    state, used, key = ck["model"], "last", "last_bn"
    if weights == "ema" and (ema := ema_state(ck)) is not None:
        state, used, key = ema, "ema", "ema_bn"
    if bn == "clean" and key in ck:
        return {**state, **ck[key]}, used, "clean"
    return state, used, "trained"
