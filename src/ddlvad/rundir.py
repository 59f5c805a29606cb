"""A run directory: its file names, its loaders, its writer lock and the claim a new run makes.

Every verb reads and writes a run through the names and loaders here: ``load_run_config``,
``load_trained`` (config + the weights to score, as a model in eval mode), ``load_creator``,
``load_threshold``, ``read_summary``; ``pick_device`` the torch device. The networks are
built by ``ddlvad.models`` (``create_model``), whose fresh modules the loaders fill. This
module imports no torch at import time (``ddlvad --help`` reads its names): the loaders
import it when they run.

Only one process writes a run: ``claim_run`` takes an exclusive ``fcntl`` lock on
``RUN/.lock`` (the holder's pid is written inside) before anything else is written, so a
second ``ddlvad train`` into the same folder fails at once and names the holder. The kernel
drops the lock when the holder dies, so a killed run never leaves a stale lock behind.
``ddlvad test`` and ``calibrate`` take the same lock; ``predict`` only reads the run (it
writes below ``RUN/predict/``, never into the run folder itself: ``check_predict_out``).

A new run refuses a folder that already holds a run unless ``overwrite``; the old files are
removed (``clear_run``) only once the new config and data validated.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddlvad.config import Config, config_from_yaml
from ddlvad.io import clean_orphans, read_text

if TYPE_CHECKING:
    import torch

    from ddlvad.models.pseudo import PseudoAnomalyCreator

LOCK_FILE = ".lock"
CONFIG = "config.yaml"
CHECKPOINT = Path("checkpoints") / "last.pt"
TRAIN_LOG = "train_log.csv"
SIGMA_CSV = "sigma.csv"
TRAIN_SUMMARY = "train_summary.json"
THRESHOLD = "threshold.json"
SCORES = "scores.csv"
SCORES_SIDECAR = "scores.csv.json"
METRICS = "metrics.json"
PROTOCOLS = "protocols.json"
HEALTH = "health.json"  # ddlvad check
PLOTS = "plots"
SIGMA_PLOT = Path(PLOTS) / "sigma_trajectory.png"
REPORT = "report.html"
ONNX_FILE = "model.onnx"  # whole clips; the stream engine uses the two graphs below
ONNX_REPORT = f"{ONNX_FILE}.json"
ONNX_STREAM_FILES = ("model_encoder.onnx", "model_head.onnx")
PREDICT = "predict"
SCENE_PREFIX = "scene_"  # ``--scene all``: one run directory per scene, <out>/scene_<id>
# Everything a run (train, test, report, export, predict) writes into its folder.
ARTIFACTS = (
    CONFIG,
    CHECKPOINT.parent.name,
    TRAIN_LOG,
    SIGMA_CSV,
    TRAIN_SUMMARY,
    THRESHOLD,
    SCORES,
    SCORES_SIDECAR,
    METRICS,
    HEALTH,
    PLOTS,
    REPORT,
    ONNX_FILE,
    ONNX_REPORT,
    *ONNX_STREAM_FILES,
    PREDICT,
)
# What marks a folder as holding a run.
RUN_MARKERS = (CONFIG, str(CHECKPOINT), TRAIN_LOG)
FINISH_HINT = "rerun its `ddlvad train` command with --resume to finish it"


class RunLocked(RuntimeError):
    """Another live process is writing this run directory."""


class RunExists(ValueError):
    """A new run was pointed at a folder that already holds a run."""


def run_markers(run_dir: str | Path) -> list[str]:
    """The files that show ``run_dir`` holds a run (empty when it does not)."""
    return [m for m in RUN_MARKERS if (Path(run_dir) / m).exists()]


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def lock_holder(run_dir: str | Path) -> str | None:
    """The pid (as text) of the process writing ``run_dir``, or None when no one is."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _read_pid(path)
        return None
    finally:
        os.close(fd)  # closing drops a probe lock we may have taken
    return None


@contextlib.contextmanager
def claim_run(run_dir: str | Path, enabled: bool = True) -> Iterator[Path]:
    """Hold ``run_dir``'s writer lock for the block; RunLocked naming the holder's pid.

    Creates ``run_dir``. A folder this call created and left holding nothing but the lock
    file (the run failed before writing) is removed again on exit."""
    run_dir = Path(run_dir)
    if not enabled:
        yield run_dir
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(
                f"{run_dir}: run directory is in use by another ddlvad process "
                f"(pid {_read_pid(path)}); wait for it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        for d in (run_dir, run_dir / "checkpoints"):  # no other writer: all are orphans
            clean_orphans(d, min_age_s=0.0)
        yield run_dir
    finally:
        os.close(fd)  # releases the lock
        if created and sorted(os.listdir(run_dir)) == [LOCK_FILE]:
            with contextlib.suppress(OSError):
                path.unlink()
                run_dir.rmdir()


def check_new_run(run_dir: str | Path, overwrite: bool) -> None:
    """RunExists unless ``run_dir`` holds no run and no run's outputs yet, or ``overwrite``
    was asked for (the old files then go once the new config and data validated)."""
    if overwrite:
        return
    found = run_markers(run_dir)
    if found:
        raise RunExists(
            f"{run_dir}: already holds a run ({', '.join(found)}); pass --resume to continue "
            f"it, --overwrite to replace it, or choose another --out"
        )
    stray = [name for name in ARTIFACTS if (Path(run_dir) / name).exists()]
    if stray:
        raise RunExists(
            f"{run_dir}: holds outputs of an earlier run ({', '.join(stray)}) that a new run "
            f"would leave beside its own; pass --overwrite to remove them, or choose another --out"
        )


def clear_run(run_dir: str | Path) -> None:
    """Remove a previous run's artifacts (the caller holds the lock and validated first)."""
    for name in ARTIFACTS:
        p = Path(run_dir) / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def load_run_config(run_dir: str | Path) -> Config:
    """A run's config.yaml, validated; errors name the file."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path}: no config.yaml; is {run_dir} a ddlvad run directory?")
    return config_from_yaml(read_text(path), str(path)).validate(str(path))


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """The run's train_summary.json, or {} when it has none (or an unreadable one)."""
    try:
        return json.loads((Path(run_dir) / TRAIN_SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def check_threshold(value: float, source: str) -> float:
    """``value`` as an alert threshold: ValueError naming ``source`` (a file or a flag) when
    it is not a finite number (no score is above NaN: no alert could ever fire)."""
    if not math.isfinite(value):
        raise ValueError(f"{source}: threshold = {value}: expected a finite number")
    return value


def load_threshold(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's threshold.json as a dict, or None when the run has none."""
    path = Path(run_dir) / THRESHOLD
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        value = float(d["threshold"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path}: not a ddlvad threshold file (expected a 'threshold' number)"
        ) from e
    check_threshold(value, str(path))
    return d


def safe_name(text: str) -> str:
    """``text`` as one safe file name: runs of other characters than ``A-Za-z0-9._-``
    become ``_``; an empty or dots-only result (``.``, ``..``) becomes ``input``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    return name if name.strip(".") else "input"


def predict_dir(base: str | Path, source: str) -> Path:
    """``base/predict/<name>``: predict's default output folder, named after the last
    component of its input, a video file without its extension (``clip.mp4`` ->
    ``predict/clip``: a folder not named like a video; ``..`` -> the name of the folder it
    stands for)."""
    from ddlvad.data.sources import VIDEO_EXTS  # cv2: not at import (``ddlvad --help``)

    p = Path(source)
    name = p.resolve().name if p.name in ("", ".", "..") and p.exists() else p.name
    if "://" not in source and p.suffix.lower() in VIDEO_EXTS:
        name = p.stem
    return Path(base) / PREDICT / safe_name(name)


def check_predict_out(out: str | Path, run_dir: str | Path, inside_ok: bool = True) -> Path:
    """``out``, refusing a folder that is the run folder or holds it (predict's files there
    would replace the run's own ``scores.csv``), and one inside it unless ``inside_ok`` (a
    model entry is never written)."""
    o, r = Path(out).resolve(), Path(run_dir).resolve()
    if o == r or o in r.parents:
        raise ValueError(
            f"output folder {out} resolves to {o}, which {'is' if o == r else 'holds'} the run "
            f"folder {r} (its scores.csv would be replaced); expected a folder below it or "
            f"elsewhere"
        )
    if not inside_ok and r in o.parents:
        raise ValueError(
            f"output folder {out} is inside the model folder {r}, which is never written; "
            f"expected a folder outside it"
        )
    return Path(out)


def scene_dirs(out: str | Path) -> list[Path]:
    """The per-scene run directories under ``out`` (empty if it is a single run)."""
    out = Path(out)
    if (out / CONFIG).exists() or not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.name.startswith(SCENE_PREFIX) and p.is_dir())


def pick_device(name: str, what: str = "device") -> torch.device:
    """``auto``: CUDA when available, else the CPU; any other name as torch spells it, once
    checked to exist here (ValueError naming ``what``, e.g. ``--device``, otherwise)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"{what} {name!r}: not a torch device; expected auto, cpu, cuda or cuda:N"
        ) from None
    backend = getattr(torch, dev.type, None)
    if dev.type != "cpu" and not getattr(backend, "is_available", lambda: True)():
        raise ValueError(
            f"{what} {name!r}: no {dev.type.upper()} device here (this torch build or machine "
            f"has none); expected cpu or auto"
        )
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"{what} {name!r}: only {torch.cuda.device_count()} CUDA device(s) here "
            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
        )
    return dev


def load_trained(
    run_dir: str | Path, cfg: Config | None = None, device: str = "cpu", info: dict | None = None
) -> tuple[Config, torch.nn.Module]:
    """(cfg, model in eval mode) from a run directory's config.yaml and last checkpoint,
    with the weights ``score.weights`` picks (the EMA when the run kept one, else the last)
    and the BatchNorm statistics ``score.bn`` picks.

    ``info``, when given, is filled with the checkpoint used (file, epoch, step, sha256)."""
    from ddlvad.checkpoint import load_checkpoint, scoring_state

    cfg = cfg or load_run_config(run_dir)
    ck = load_checkpoint(Path(run_dir) / CHECKPOINT, cfg)
    state, weights, bn = scoring_state(ck, cfg.score.weights, cfg.score.bn)
    if bn != cfg.score.bn:
        warnings.warn(
            f"{Path(run_dir) / CHECKPOINT}: holds no clean BatchNorm statistics (training "
            f"stopped before its end-of-training step, or predates them): scoring with the "
            f"trained ones (recorded as score.bn = trained); {FINISH_HINT}",
            RuntimeWarning,
            stacklevel=2,
        )
        cfg.score.bn = bn
    if info is not None:  # which checkpoint, weights (the EMA only when kept), BN statistics
        info.update(checkpoint_info(run_dir, ck), weights=weights, bn=bn)
    from ddlvad.models import create_model

    model = create_model(cfg)
    model.load_state_dict(state)
    return cfg, model.to(device).eval()


def load_creator(run_dir: str | Path, cfg: Config) -> PseudoAnomalyCreator:
    """The run's pseudo-anomaly creator with its learned (or fixed) sigma, from last.pt."""
    from ddlvad.checkpoint import load_checkpoint
    from ddlvad.models import create_pseudo

    ck = load_checkpoint(Path(run_dir) / CHECKPOINT, cfg)
    creator = create_pseudo(cfg)
    if "creator" in ck:
        creator.load_state_dict(ck["creator"])
    return creator.eval()


def checkpoint_info(run_dir: str | Path, ck: dict[str, Any]) -> dict[str, Any]:
    """Which checkpoint a result came from: file, epoch, step, sha256 of the file's bytes."""
    return {
        "file": str(Path(run_dir) / CHECKPOINT),
        "epoch": ck.get("epoch"),
        "step": ck.get("step"),
        "sha256": ck.get("sha256"),
    }


def warn_if_training(run_dir: str | Path) -> None:
    """A RuntimeWarning when another process is still training ``run_dir`` (its checkpoint
    is an early one; the outputs record which checkpoint was scored), else
    ``warn_if_unfinished``'s (predict's check; test holds the run's lock instead)."""
    pid = lock_holder(run_dir)
    if pid is not None:
        warnings.warn(
            f"{run_dir}: still being trained (pid {pid}); scoring its latest checkpoint, "
            f"not the final one (the checkpoint's epoch and step are recorded in the outputs)",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    warn_if_unfinished(run_dir)


def read_health(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's health (``ddlvad check``): health.json, else train_summary.json's
    ``health``, else None."""
    try:
        return json.loads((Path(run_dir) / HEALTH).read_text())
    except (OSError, ValueError):
        return read_summary(run_dir).get("health")


def warn_if_unhealthy(run_dir: str | Path) -> None:
    """A RuntimeWarning when the run's health check found it unhealthy (predict, serve)."""
    h = read_health(run_dir)
    if h and h.get("verdict") == "unhealthy":
        warnings.warn(
            f"{run_dir}: unhealthy model (health {h['health']:.3f}: synthetic anomalies in "
            f"normal footage do not stand out); its alerts are not to be trusted; retrain "
            f"(ddlvad train --seeds 3 keeps the healthiest of three seeds)",
            RuntimeWarning,
            stacklevel=3,
        )


def warn_if_unfinished(run_dir: str | Path) -> None:
    """A RuntimeWarning when ``run_dir``'s training stopped before the end-of-training files
    (threshold.json, train_summary.json)."""
    missing = [n for n in (THRESHOLD, TRAIN_SUMMARY) if not (Path(run_dir) / n).exists()]
    if missing and (Path(run_dir) / CHECKPOINT).exists():
        alerts = f"; without {THRESHOLD} predict raises no alerts" if THRESHOLD in missing else ""
        warnings.warn(
            f"{run_dir}: training did not finish (no {' and no '.join(missing)}){alerts}; "
            f"{FINISH_HINT}",
            RuntimeWarning,
            stacklevel=3,
        )
