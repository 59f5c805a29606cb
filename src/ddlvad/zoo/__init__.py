"""Shipped pretrained models: each entry is a read-only run directory inside the package.

An entry ``zoo/<name>/`` holds what the verbs read from a run (``config.yaml``, a
weights-only ``checkpoints/last.pt``, ``threshold.json``, ``sigma.csv``,
``train_summary.json``) plus ``card.json`` (provenance, metrics, and the sha256 of every
other file) and ``MODEL_CARD.md``. Every file is checked against its sha256 before use, so a
damaged or edited entry is refused. Verbs never write into an entry: ``materialize`` copies
it to a folder of the user's, which then acts as an ordinary run.

``--model PATH`` (a name holding ``/``) runs a model folder from outside the package the same
way: its files are checked against its own card.json, which is not signed, so the check
catches damage, not a card edited together with its files. Names in a card must stay inside
the entry, and a copy stays inside its destination.

``python -m ddlvad.zoo pack RUN NAME --command "..."`` makes an entry from a trained and
tested run; ``python -m ddlvad.zoo check NAME METRICS_JSON`` compares a fresh
``metrics.json`` with the card (CI's real-data regression check): the protocol it was scored
with (the card's ``metrics.protocol``; a field only one of them records is not compared),
then the micro AUC.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ddlvad import rundir
from ddlvad.scoring.protocol import ScoreProtocol

ZOO_DIR = Path(__file__).resolve().parent
CARD = "card.json"
# The run files an entry ships, when the source run has them (the checkpoint is rewritten).
RUN_FILES = (rundir.CONFIG, rundir.THRESHOLD, rundir.SIGMA_CSV, rundir.TRAIN_SUMMARY)
CHECKPOINT = rundir.CHECKPOINT.as_posix()


class ZooError(ValueError):
    """Unknown, incomplete or tampered model entry."""


def entry_dir(name: str, root: Path | None = None) -> Path:
    """The folder of model ``name``: a shipped entry under ``root``, or, for a name holding a
    path separator (``--model PATH``), that folder."""
    if os.sep in name or (os.altsep and os.altsep in name):
        return Path(name)
    return (ZOO_DIR if root is None else root) / name


def inside(base: Path, rel: str, card: Path) -> Path:
    """``base / rel`` for a file name listed in ``card``; ZooError when the name leaves
    ``base`` (absolute, ``..``, or through a link)."""
    target = base / rel
    escapes = Path(rel).is_absolute() or ".." in Path(rel).parts
    if escapes or not target.resolve().is_relative_to(base.resolve()):
        raise ZooError(
            f"{card}: lists {rel!r}, which is outside {base}; expected file names inside the "
            f"model folder"
        )
    return target


def names(root: Path | None = None) -> list[str]:
    """The entries under ``root`` (folders holding a card.json), sorted."""
    root = ZOO_DIR if root is None else root
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def read_card(name: str, root: Path | None = None) -> dict[str, Any]:
    """Entry ``name``'s card.json (ZooError naming the shipped models when unknown)."""
    root = ZOO_DIR if root is None else root
    path = entry_dir(name, root) / CARD
    if not path.is_file():
        known = ", ".join(names(root)) or "none"
        raise ZooError(f"unknown model {name!r} (no {path}); shipped models: {known}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ZooError(f"{path}: unreadable model card ({e})") from None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(name: str, root: Path | None = None) -> Path:
    """The verified entry folder: every file the card lists exists and matches its sha256."""
    root = ZOO_DIR if root is None else root
    card = read_card(name, root)
    entry = entry_dir(name, root)
    files = card.get("files") or {}
    if not isinstance(files, dict) or CHECKPOINT not in files or rundir.CONFIG not in files:
        raise ZooError(f"{entry / CARD}: lists no checkpoint/config; not a model entry")
    for rel, want in files.items():
        path = inside(entry, rel, entry / CARD)
        if not path.is_file():
            raise ZooError(f"{path}: missing from model {name!r} (the card lists it)")
        got = sha256(path)
        if got != want:
            raise ZooError(
                f"{path}: sha256 {got[:16]}... does not match the card's {want[:16]}...; the "
                f"model files were changed or damaged; reinstall ddlvad"
            )
    return entry


def materialize(name: str, dest: str | Path, root: Path | None = None) -> Path:
    """Copy the verified entry ``name`` to ``dest`` (a run folder the verbs may write into).

    A ``dest`` that already holds this entry's files unchanged is reused; one holding
    anything else under the same names is refused rather than overwritten."""
    root = ZOO_DIR if root is None else root
    entry, dest = resolve(name, root), Path(dest)
    files = read_card(name, root)["files"]
    for rel, want in files.items():
        target = inside(dest, rel, entry / CARD)
        if target.exists() and sha256(target) != want:
            raise ZooError(
                f"{target}: exists and is not model {name!r}'s file; choose another --out"
            )
    for rel in (*files, CARD, "MODEL_CARD.md"):
        src, target = entry / rel, dest / rel
        if src.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return dest


def default_run_dir(name: str) -> Path:
    """Where ``--model NAME`` puts its run copy when no ``--out`` is given."""
    return Path(f"ddlvad-{entry_dir(name).resolve().name}")


def card_line(name: str, root: Path | None = None) -> str:
    """One line for ``ddlvad models``."""
    root = ZOO_DIR if root is None else root
    c = read_card(name, root)
    m = c.get("metrics", {})
    auc = m.get("frame_auc_micro")
    auc_text = f"micro AUC {100 * auc:.2f}" if isinstance(auc, float) else "micro AUC n/a"
    return f"{name}: {c.get('summary', '')} ({c.get('dataset', '?')}, {auc_text})"


def check_metrics(name: str, metrics_path: str | Path, tol: float = 1e-4) -> str:
    """Compare a fresh metrics.json with the card: ZooError when it was scored under another
    protocol, or when its micro AUC is further than ``tol`` from the card's."""
    card = read_card(name)  # the installed entry's card
    fresh = json.loads(Path(metrics_path).read_text())
    # a field only one side records (written before it existed) is read as the other's
    mine, theirs = fresh.get("protocol") or {}, card["metrics"].get("protocol") or {}
    carded = ScoreProtocol.from_record(theirs, ScoreProtocol.from_record(mine, ScoreProtocol()))
    differ = carded.differences(ScoreProtocol.from_record(mine, carded))
    if differ:
        raise ZooError(
            f"{metrics_path}: scored under another protocol than model {name!r}'s card "
            f"(card vs this file: {', '.join(differ)}); score with the card's protocol"
        )
    want, got = card["metrics"]["frame_auc_micro"], fresh["frame_auc_micro"]
    if abs(got - want) > tol:
        raise ZooError(
            f"{metrics_path}: micro AUC {got:.6f} differs from model {name!r}'s card "
            f"{want:.6f} by more than {tol}"
        )
    return f"model {name}: micro AUC {got:.6f} reproduces the card's {want:.6f} (tol {tol})"
