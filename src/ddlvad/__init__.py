"""ddlvad: video anomaly detection by Dynamic Distinction Learning.

    from ddlvad import Detector, Run, load_preset

    det = Detector.from_pretrained("ped2")      # a shipped model; or Detector.from_run(DIR)
    raw = det.score(frames)                     # one anomaly score per frame
    run = Run("runs/mine")                      # train, test, detector, export, report

The names below load their modules on first use, so ``import ddlvad`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it (imported on first access)
_EXPORTS = {
    "Detector": "ddlvad.infer.detector",
    "Run": "ddlvad.api",
    "load_run": "ddlvad.api",
    "ScoreProtocol": "ddlvad.scoring.protocol",
    "Config": "ddlvad.config",
    "load_preset": "ddlvad.config",
    "create_model": "ddlvad.models",
}
__all__ = [
    "Config",
    "Detector",
    "Run",
    "ScoreProtocol",
    "__version__",
    "create_model",
    "load_preset",
    "load_run",
]

if TYPE_CHECKING:
    from ddlvad.api import Run, load_run
    from ddlvad.config import Config, load_preset
    from ddlvad.infer.detector import Detector
    from ddlvad.models import create_model
    from ddlvad.scoring.protocol import ScoreProtocol


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ddlvad' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
