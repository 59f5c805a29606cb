"""Numpy-facing detector over a trained run: frames in, anomaly scores out.

    det = Detector.from_run("runs/ped2_cpu")    # or Detector.from_pretrained("ped2")
    raw = det.score(frames)          # (N,) raw scores for (N, h, w, 3) uint8 RGB frames
    found = det.detect(frames)       # raw, smoothed (the alert score) and alert ranges
    found.alerts                     # [(first, last), ...] 0-based inclusive frame ranges

Frames go through the training preprocessing (``prepare``: area resize, gray when the run
has one channel), then the scoring engine (``ddlvad.scoring.engine``) under the run's
protocol: a sliding T-frame window centred on each frame (edge frames follow ``score.edge``,
as in ``ddlvad test``), the error map and the patch-max score. Frames can be pushed one at a
time (``scorer``), so files and live streams share one code path.

Engines: ``clip`` runs the model's own forward on (B, C, T, H, W) clips and gives exactly the
scores of ``ddlvad test`` (torch fp32). ``stream`` (C3DSU only) encodes every frame once and
reuses its features in the T windows that contain it, and evaluates only the middle time
step of each Conv3D skip (the model's forward computes all T steps and keeps one): it does
about half the FLOPs, runs 2-3x faster at the cpu preset, and its scores equal ``clip``'s
up to float rounding (about 1e-6).

Backends (``ddlvad.scoring.backends``): torch (fp32, or bf16 autocast: only worth it on CPUs
with native bf16) and onnxruntime (fp32, the graphs written by ``ddlvad export``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from ddlvad.config import Config
from ddlvad.data.sources import to_working
from ddlvad.rundir import THRESHOLD, load_run_config, load_threshold, load_trained
from ddlvad.scoring import BACKENDS, ENGINES
from ddlvad.scoring.backends import (
    Backend,
    TorchForward,
    onnx_info,
    ort_forward,
    resolve_precision,
)
from ddlvad.scoring.engine import ScoreEngine, Session
from ddlvad.scoring.gain import Gain, gain_for_run
from ddlvad.scoring.post import ScorePipeline, ranges_of
from ddlvad.scoring.protocol import ScoreProtocol


def _check_threshold_protocol(run_dir: Path, calib: dict | None, protocol: ScoreProtocol) -> None:
    """Warn when threshold.json was calibrated under another protocol than the one scored
    with: a threshold is a score level, and it means nothing under another protocol. A file
    that records no protocol (or only part of it) is read as calibrated under this one."""
    ours = protocol.alert()
    theirs = ScoreProtocol.from_record(calib or {}, ours)
    if theirs != ours:
        warnings.warn(
            f"{run_dir / THRESHOLD}: calibrated at {theirs.describe()}, but the config "
            f"scores with {ours.describe()}; re-calibrate with "
            f"`python -m ddlvad.calibrate --run {run_dir}`",
            RuntimeWarning,
            stacklevel=3,
        )


class Detection(NamedTuple):
    """One video's scores: ``raw`` (N,) patch-max scores, ``smoothed`` (N,) alert scores
    (the run's post-processing, never normalised), ``alerts``: 0-based inclusive frame
    ranges where ``smoothed`` is above the threshold (None when there is no threshold)."""

    raw: np.ndarray
    smoothed: np.ndarray
    alerts: list[tuple[int, int]] | None


class Detector:
    """A trained run as a frame scorer. ``from_run`` is the usual way to build one.

    ``protocol`` (default: the config's ``score.*``) and ``batch_size`` (default
    ``score.batch_size``) set how it scores; ``gain`` is the run's brightness calibration,
    needed when the protocol's gain is on."""

    def __init__(
        self,
        cfg: Config,
        forward: Backend,
        *,
        engine: str = "clip",
        threshold: float | None = None,
        threshold_source: str = "none",
        gain: Gain | None = None,
        protocol: ScoreProtocol | None = None,
        batch_size: int = 0,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.cfg, self.forward = cfg, forward
        self.T = cfg.model_T
        self.protocol = protocol or ScoreProtocol.from_config(cfg)
        self.gain = gain  # causal brightness calibration (score.gain), applied per stream
        self.scoring = ScoreEngine(
            self.protocol,
            forward,
            self.T,
            batch_size=batch_size or cfg.score.batch_size,
            gain=gain,
            stream=engine == "stream",
        )
        self.engine = self.scoring.mode  # "clip" where the backend has no stream engine
        self.size = (cfg.data.height, cfg.data.width, cfg.data.channels)
        self.threshold, self.threshold_source = threshold, threshold_source
        self.checkpoint: dict[str, Any] = {}  # the weights used (from_run fills it)

    @property
    def batch_size(self) -> int:
        return self.scoring.batch_size

    @property
    def pipeline(self) -> ScorePipeline:
        """Raw scores -> alert scores (``alert`` for a whole video, ``stream`` pushed)."""
        return self.scoring.pipeline

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        *,
        backend: str = "torch",
        precision: str = "auto",
        engine: str = "clip",
        device: str = "cpu",
        threshold: float | None = None,
        protocol: ScoreProtocol | None = None,
        batch_size: int = 0,
    ) -> Detector:
        """Load ``run_dir``'s config, weights (or model.onnx) and calibrated threshold.

        ``precision="auto"`` is bf16 autocast on a CPU with native bf16 (Ped2, cpu preset:
        micro AUC 86.59 vs 86.51 in fp32), else fp32; fp32 gives ``ddlvad test``'s scores.

        ``threshold`` overrides ``run_dir/threshold.json``; without either, ``threshold``
        is None and no alerts are raised. ``protocol`` overrides the config's ``score.*``
        (a threshold.json calibrated under another protocol is warned about)."""
        run_dir = Path(run_dir)
        cfg, forward, info = _load_backend(run_dir, backend, precision, engine, device)
        protocol = protocol or ScoreProtocol.from_config(cfg)
        source = "cli"
        if threshold is None:
            calib = load_threshold(run_dir)
            threshold, source = (calib["threshold"], "calibrated") if calib else (None, "none")
            _check_threshold_protocol(run_dir, calib, protocol)
        det = cls(
            cfg,
            forward,
            engine=engine,
            threshold=threshold,
            threshold_source=source,
            gain=gain_for_run(run_dir, protocol),
            protocol=protocol,
            batch_size=batch_size,
        )
        det.checkpoint = info
        return det

    @classmethod
    def from_pretrained(cls, name: str, **kwargs: Any) -> Detector:
        """A shipped model (``ddlvad models`` lists them), each file sha256-checked first;
        keywords as for ``from_run``. The package's files are only read."""
        from ddlvad import zoo

        return cls.from_run(zoo.resolve(name), **kwargs)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """One frame ((h, w, 3) RGB, or (h, w) / (h, w, 1) gray; uint8) -> (H, W, C) uint8.

        Gray frames for a three-channel run are copied to all three channels, as gray
        footage decodes for training (the ``cpu`` preset's gray copied to 3 channels)."""
        H, W, C = self.size
        if frame.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames, got {frame.dtype}")
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.ndim != 3 or frame.shape[2] not in (1, 3):
            raise ValueError(f"expected (h, w, 3) RGB or (h, w) gray frames, got {frame.shape}")
        if frame.shape == (H, W, C):
            return frame
        if frame.shape[2] == 1 and C == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.shape[2] == 3:
            return to_working(frame, H, W, C)
        return cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA)[:, :, None]

    def scorer(self, keep_error: bool = False, mask: np.ndarray | None = None) -> Session:
        """Working-size frames (``prepare``) pushed one by one (``ScoreEngine.session``;
        ``mask``: (H, W) error-map weights at the working size, 0 = ignore)."""
        return self.scoring.session(keep_error, mask=mask)

    def score(
        self, frames: Iterable[np.ndarray], *, maps: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Raw scores (N,) for N frames of one video, in order; with ``maps``, also the
        (N, H, W) error maps."""
        prepared = (self.prepare(np.asarray(f)) for f in frames)
        raw, err = self.scoring.score_frames(prepared, keep_maps=maps)
        return (raw, err) if maps else raw

    def smooth(self, raw: np.ndarray) -> np.ndarray:
        """The alert score of one whole video: the post-processing (the run's median
        filter), no normalisation."""
        return self.pipeline.alert(raw)

    def alerts(self, smoothed: np.ndarray) -> list[tuple[int, int]]:
        """0-based inclusive frame ranges where the alert scores ``smoothed`` (``smooth``)
        lie above the threshold; ValueError when the detector has none."""
        if self.threshold is None:
            raise ValueError(
                "no alert threshold: the run has no threshold.json (ddlvad calibrate --run "
                "DIR writes one) and none was given (Detector.from_run(..., threshold=X))"
            )
        return ranges_of(np.asarray(smoothed) > self.threshold)

    def detect(self, frames: Iterable[np.ndarray]) -> Detection:
        """Raw scores, alert scores and alert ranges (None without a threshold) of N frames
        of one video, in order."""
        raw = np.asarray(self.score(frames))
        smoothed = self.smooth(raw)
        alerts = self.alerts(smoothed) if self.threshold is not None else None
        return Detection(raw, smoothed, alerts)


def _load_backend(
    run_dir: Path, backend: str, precision: str, engine: str, device: str
) -> tuple[Config, Backend, dict[str, Any]]:
    """(config, backend, which weights) of a run: its torch model, or its ONNX graphs."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and precision == "auto":
        precision = "fp32"
    precision = resolve_precision(precision, device)
    if backend == "onnxruntime":
        if precision != "fp32":
            raise ValueError("the onnxruntime backend runs fp32; use --precision fp32")
        cfg = load_run_config(run_dir)
        stream = engine == "stream" and cfg.model_T > 1
        return cfg, ort_forward(run_dir, stream=stream), onnx_info(run_dir)
    info: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, device=device, info=info)
    return cfg, TorchForward(model, precision, device), info
