"""The library API on one run directory; the ``ddlvad`` verbs call it, so the two agree.

    from ddlvad import Run, load_preset

    cfg = load_preset("cpu")
    cfg.data.root = "/data/ped2"
    run = Run("runs/ped2")
    run.train(cfg)                    # checkpoints, sigma.csv, threshold.json
    metrics = run.test(patch=12)      # scores.csv, metrics.json under that protocol
    det = run.detector()              # frames in, scores out (``ddlvad.infer.detector``)
    run.export(); run.report()        # model.onnx; report.html

``load_run(path)`` opens a run that exists; ``Run.pretrained(name, out)`` a writable copy
of a shipped model. Work over many runs (grids, sweeps, one run per scene) is in
``ddlvad.experiments``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddlvad.config import Config
from ddlvad.rundir import CONFIG, METRICS, SCORES, load_run_config, read_summary
from ddlvad.scoring.protocol import ScoreProtocol

if TYPE_CHECKING:
    from ddlvad.infer.detector import Detector


class Run:
    """A run directory (``path``): train into it, then test, calibrate, score, export,
    report. Each method imports what it needs when it runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @classmethod
    def pretrained(cls, name: str, out: str | Path | None = None) -> Run:
        """A copy of shipped model ``name`` at ``out`` (default ``./ddlvad-NAME``), each file
        sha256-checked: a run the methods may write into."""
        from ddlvad import zoo

        return cls(zoo.materialize(name, out or zoo.default_run_dir(name)))

    def config(self) -> Config:
        """The run's config.yaml, validated."""
        return load_run_config(self.path)

    def protocol(self) -> ScoreProtocol:
        """The scoring protocol of the run's config (``score.*``)."""
        return ScoreProtocol.from_config(self.config())

    def train(
        self, cfg: Config, *, resume: bool = False, overwrite: bool = False, progress: bool = True
    ) -> dict[str, Any]:
        """Train (or ``resume``) ``cfg`` into this folder; then (the main process, under DDP)
        plot its sigma trajectory and check its health (``check``), which goes into
        train_summary.json. Returns the training summary."""
        from ddlvad.report.plots import plot_run_sigma
        from ddlvad.train.loop import train

        summary = train(cfg, self.path, resume=resume, overwrite=overwrite, progress=progress)
        if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes
            plot_run_sigma(self.path, cfg)
            if "health" not in read_summary(self.path):  # also after a stop in the check
                summary = {**summary, "health": self._summarize_health(progress)}
        return summary

    def _summarize_health(self, progress: bool) -> dict[str, Any]:
        """Check the finished run; its health (short form) into train_summary.json, and
        returned."""
        from ddlvad.health.check import short
        from ddlvad.io import atomic_write_json
        from ddlvad.rundir import TRAIN_SUMMARY

        try:
            health = short(self.check(progress=progress))
        except ValueError as e:  # footage too short to check: the run stands, unchecked
            health = {"health": None, "verdict": "unchecked", "advice": str(e)}
        atomic_write_json(self.path / TRAIN_SUMMARY, {**read_summary(self.path), "health": health})
        return health

    def test(
        self,
        cfg: Config | None = None,
        *,
        protocol: ScoreProtocol | None = None,
        progress: bool = True,
        pixel_stride: int = 2,
        **changes: Any,
    ) -> dict[str, Any]:
        """Score the labelled test split of ``cfg``'s dataset (default: the run's config)
        under ``protocol`` (default: the config's) with ``changes`` (e.g. ``patch=8``);
        write scores.csv and metrics.json and return the metrics."""
        from ddlvad.scoring.evaluate import evaluate

        cfg, protocol = self._scoring(cfg, protocol, changes)
        return evaluate(
            self.path, cfg, protocol=protocol, progress=progress, pixel_stride=pixel_stride
        )

    def compare_protocols(
        self,
        cfg: Config | None = None,
        *,
        protocol: ScoreProtocol | None = None,
        progress: bool = True,
        **changes: Any,
    ) -> list[dict[str, Any]]:
        """Micro and macro AUC under every patch, grid and median from one pass over the
        test split (``protocol``'s edge rule and gain); writes protocols.json."""
        from ddlvad.scoring.protocols import compare_protocols

        cfg, protocol = self._scoring(cfg, protocol, changes)
        return compare_protocols(self.path, cfg, protocol, progress=progress)

    def calibrate(self, *, quantile: float | None = None, progress: bool = True) -> dict:
        """Re-calibrate the alert threshold (threshold.json) on the run's normal frames."""
        from ddlvad.rundir import claim_run, load_trained, pick_device
        from ddlvad.train.calibrate import write_threshold

        device = pick_device("auto")
        cfg, model = load_trained(self.path, device=device)
        if quantile is not None:
            cfg.calib.quantile = quantile
        cfg.validate(f"{self.path} with --quantile")
        with claim_run(self.path):  # not while the run is being trained
            return write_threshold(self.path, cfg, model, device, progress=progress)

    def calibrate_rate(
        self,
        alarms_per_hour: float,
        footage: list[str] | None = None,
        *,
        fps: float = 0.0,
        min_event_s: float = 0.5,
        cooldown_s: float = 10.0,
        max_event_s: float = 60.0,
    ) -> dict[str, Any]:
        """Re-calibrate threshold.json for at most ``alarms_per_hour`` false alarms per hour
        under serve's alert rule, on normal ``footage`` (video files, frame folders, folders
        of videos) or, without it, on the run's own calibration frames (``fps`` needed where
        the footage has no frame rate: frame folders). See ``ddlvad.serve.calibrate``."""
        from ddlvad.rundir import claim_run
        from ddlvad.serve.calibrate import live_scores, threshold_for_rate
        from ddlvad.serve.rules import RuleConfig
        from ddlvad.train.calibrate import save_threshold

        det = self.detector(precision="fp32", engine="clip", threshold=0.0)
        scores, rates, names = {}, {}, []
        for name, frames, rate in _footage(self, footage, fps):
            scores[name], rates[name] = live_scores(det, frames), rate
            names.append(name)
        rule = RuleConfig(0.0, min_event_s, cooldown_s, max_event_s)
        result = threshold_for_rate(scores, rates, alarms_per_hour, rule)
        result["footage"] = footage or "the run's calibration frames"
        result.update(det.protocol.alert().record())
        with claim_run(self.path):
            return save_threshold(self.path, result)

    def check(
        self, *, root: str | None = None, write: bool = True, progress: bool = True
    ) -> dict[str, Any]:
        """The health record of the model from its normal footage (``ddlvad.health.check``;
        ``root``: where that footage is, when not at the run's ``data.root``); written to
        health.json when ``write``."""
        from ddlvad.health.check import check_run
        from ddlvad.io import atomic_write_text
        from ddlvad.rundir import HEALTH

        cfg = self.config()
        if root:
            cfg.data.root = root
        record = check_run(self.path, cfg, progress=progress)
        if write:
            atomic_write_text(self.path / HEALTH, json.dumps(record, indent=2) + "\n")
        return record

    def detector(self, **kwargs: Any) -> Detector:
        """A ``Detector`` over this run (keywords: those of ``Detector.from_run``)."""
        from ddlvad.infer.detector import Detector

        return Detector.from_run(self.path, **kwargs)

    def export(self, *, check: bool = True) -> dict[str, Any]:
        """model.onnx (and the stream engine's graphs), checked against torch; the report."""
        from ddlvad.infer.export import export_onnx

        return export_onnx(self.path, check=check)

    def report(self, cfg: Config | None = None, *, progress: bool = True, **options: Any) -> Path:
        """plots/ and report.html (``options``: ``build_report``'s: compare, frames, clips,
        max_videos), testing the run first when it has no test results. ``cfg`` (default:
        the run's config) says where its data is (a shipped model's copy names none)."""
        from ddlvad.report.page import build_report

        if not (self.path / METRICS).exists() or not (self.path / SCORES).exists():
            self.test(cfg, progress=progress)
        return build_report(self.path, cfg=cfg, progress=progress, **options)

    def _scoring(
        self, cfg: Config | None, protocol: ScoreProtocol | None, changes: dict[str, Any]
    ) -> tuple[Config, ScoreProtocol]:
        cfg = cfg or self.config()
        return cfg, (protocol or ScoreProtocol.from_config(cfg)).replace(**changes)


def _footage(run: Run, footage: list[str] | None, fps: float):
    """(name, frames, frame rate) of each normal video to calibrate on."""
    from ddlvad.data.sources import open_source
    from ddlvad.infer.predict import resolve_input

    if not footage:
        from ddlvad.train.calibrate import calibration_videos

        if not fps:
            raise ValueError("--fps: the run's own frames have no frame rate; give --fps")
        for name, video in calibration_videos(run.config()).items():
            yield name, video, fps
        return
    for text in footage:
        _, videos = resolve_input(text)
        for name, path in videos:
            src = open_source(path)
            rate = fps or src.fps
            if not rate:
                raise ValueError(f"{path}: frame folder without a frame rate; give --fps")
            yield name, src, rate


def load_run(path: str | Path) -> Run:
    """The run at ``path``; FileNotFoundError when it holds no run (no config.yaml)."""
    run = Run(path)
    if not (run.path / CONFIG).is_file():
        raise FileNotFoundError(f"{run.path / CONFIG}: no config.yaml; is {path} a ddlvad run?")
    return run
