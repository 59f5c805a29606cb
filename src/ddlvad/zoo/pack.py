"""Make a zoo entry from a trained and tested run: weights-only checkpoint, card, sha256s."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

from ddlvad.checkpoint import load_checkpoint
from ddlvad.io import atomic_write, atomic_write_json, atomic_write_text
from ddlvad.rundir import CONFIG, METRICS, TRAIN_SUMMARY, load_run_config, load_trained
from ddlvad.scoring.protocol import ScoreProtocol
from ddlvad.zoo import CARD, CHECKPOINT, RUN_FILES, ZOO_DIR, sha256

MAX_FILE_BYTES = 5 * 1024 * 1024  # weights in git: each file under 5 MB
# The checkpoint keys inference needs; optimiser, schedule and RNG state are left out.
KEEP = ("model", "last_bn", "ema", "ema_bn", "creator", "model_key", "fingerprint", "epoch", "step")
EMA_KEYS = ("ema", "ema_bn")
METRIC_KEYS = (
    "frame_auc_micro",
    "frame_auc_macro",
    "frame_auc_micro_normalized",
    "frame_auc_micro_unsmoothed",
    "eer",
    "ap",
    "frames",
    "anomalous_frames",
    "videos",
    "per_video_auc",
    "protocol",
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # the packing machine: the card's command gives the training run's threads
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _write_entry_files(run: Path, entry: Path, record: dict[str, Any]) -> None:
    trained = load_run_config(run)
    own = ScoreProtocol.from_config(trained)
    protocol = ScoreProtocol.from_record(record, own)  # the card's metrics were scored so
    cfg = protocol.apply(trained)
    ck = load_checkpoint(run / CHECKPOINT, cfg)
    keep = KEEP if cfg.score.weights == "ema" else tuple(k for k in KEEP if k not in EMA_KEYS)
    slim = {k: ck[k] for k in keep if k in ck}  # the EMA only when the entry scores with it
    atomic_write(entry / CHECKPOINT, lambda tmp: torch.save(slim, tmp))
    for rel in RUN_FILES[1:]:
        if (run / rel).is_file():
            shutil.copyfile(run / rel, entry / rel)
    if protocol.alert() != own.alert():  # the run's threshold belongs to another protocol
        _recalibrate(run, cfg, entry)
    cfg.data.root, cfg.data.cache_dir = "", ""  # the trainer's paths mean nothing elsewhere
    cfg.dump(entry / CONFIG)


def _recalibrate(run: Path, cfg, entry: Path) -> None:
    """threshold.json under the entry's protocol, on the run's own calibration frames."""
    from ddlvad.train.calibrate import calibrate, calibration_videos, run_engine, save_threshold

    _, model = load_trained(run, cfg)
    engine = run_engine(run, cfg, model, "cpu")
    save_threshold(entry, calibrate(engine, cfg, calibration_videos(cfg)))  # finite only


def _health_lines(h: dict[str, Any] | None) -> list[str]:
    """The card's label-free health (``ddlvad check``), when it was checked."""
    if not h or h.get("health") is None:
        return []
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in h.get("kinds", {}).items())
    return [
        f"- Health (`ddlvad check`, normal footage only): {h['health']:.3f}, "
        f"{h.get('verdict', '')} ({kinds})"
    ]


def card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}"  # noqa: E731
    videos = ", ".join(f"{k} {pct(v)}" for k, v in sorted((m.get("per_video_auc") or {}).items()))
    lines = [
        f"# Model card: {card['name']}",
        "",
        card["summary"],
        "",
        f"- Dataset: {card['dataset']} ({card['split']})",
        f"- Preset: {card['preset']}; seed {card['seed']}",
        f"- Trained with: `{card['command']}`",
        f"- Commit: {card['commit']}",
        f"- Training: {card['train_seconds']} s, {card['train_steps']} steps on {card['machine']}",
        f"- Final sigma: {card.get('sigma')}",
        *_health_lines(card.get("health")),
        "",
        "| micro AUC | macro AUC | micro, per-video min-max | EER | AP |",
        "|---|---|---|---|---|",
        f"| {pct(m.get('frame_auc_micro'))} | {pct(m.get('frame_auc_macro'))} | "
        f"{pct(m.get('frame_auc_micro_normalized'))} | {m.get('eer', 0):.3f} | "
        f"{m.get('ap', 0):.3f} |",
        "",
        f"Protocol: `{json.dumps(m.get('protocol', {}), sort_keys=True)}`",
        "",
        f"Per-video AUC: {videos}",
        "",
        f"Reproduce: `{card['reproduce']}`",
        "",
        card.get("notes", ""),
    ]
    return "\n".join(lines).rstrip() + "\n"


def pack(
    run: str | Path, name: str, *, command: str, info: dict[str, Any], root: Path = ZOO_DIR
) -> Path:
    """Write ``root/name`` from ``run`` (trained, and tested: its metrics.json is the card's,
    and the entry's score.* config is set to the protocol those metrics were scored with).

    ``info``: summary, dataset, split, preset, seed, notes, commit (optional)."""
    run = Path(run)
    metrics = json.loads((run / METRICS).read_text())
    summary = json.loads((run / TRAIN_SUMMARY).read_text())
    entry = root / name
    if entry.exists():
        shutil.rmtree(entry)
    (entry / CHECKPOINT).parent.mkdir(parents=True)
    _write_entry_files(run, entry, metrics.get("protocol", {}))
    files = {}
    for p in sorted(q for q in entry.rglob("*") if q.is_file()):
        if p.stat().st_size >= MAX_FILE_BYTES:
            raise ValueError(f"{p}: {p.stat().st_size} bytes; zoo files must stay under 5 MB")
        files[p.relative_to(entry).as_posix()] = sha256(p)
    card = {
        "name": name,
        **info,
        "command": command,
        "commit": info.get("commit") or git_commit(Path(__file__).resolve().parents[3]),
        "machine": info.get("machine") or machine(),
        "train_seconds": summary.get("seconds"),
        "train_steps": summary.get("steps"),
        "sigma": summary.get("sigma"),
        "health": summary.get("health"),
        "metrics": {k: metrics.get(k) for k in METRIC_KEYS},
        "reproduce": f"ddlvad test --model {name} --data {info['dataset_flag']} "
        f"--root PATH --out DIR",
        "files": files,
    }
    atomic_write_json(entry / CARD, card)
    atomic_write_text(entry / "MODEL_CARD.md", card_markdown(card))
    return entry
