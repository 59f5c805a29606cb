"""Shared fixtures: a tiny synthetic dataset in the real on-disk layout, and a tiny run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ddlvad.config import Config, load_preset
from ddlvad.data.synthetic import SceneSpec, generate

torch.set_num_threads(1)  # tiny tensors: one thread is fastest and never oversubscribes

TINY_SPEC = SceneSpec(height=48, width=64, train_videos=2, test_videos=3, frames=30, seed=3)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth"), TINY_SPEC)


def tiny_config(root: Path, cache: Path, **overrides) -> Config:
    cfg = load_preset("tiny")
    cfg.data.root = str(root)
    cfg.data.cache_dir = str(cache)
    for k, v in overrides.items():
        section, attr = k.split("__")
        setattr(getattr(cfg, section), attr, v)
    return cfg


def train_args(root: Path, run: Path, cache: Path, *sets: str) -> list[str]:
    """``ddlvad train`` arguments for a tiny synthetic run into ``run`` (``sets``: more
    ``--set`` items)."""
    return [
        "train", "--data", "synthetic", "--root", str(root), "--preset", "tiny",
        "--out", str(run), "--quiet", "--set", f"data.cache_dir={cache}", *sets,
    ]  # fmt: skip


def csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows as dicts (a run's train_log.csv, sigma.csv, ...)."""
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture
def tiny_cfg(synth_root, tmp_path) -> Config:
    return tiny_config(synth_root, tmp_path / "cache")


@pytest.fixture(scope="session")
def trained_run(synth_root, tmp_path_factory) -> Path:
    """A tiny DDL run (a few steps), trained once per test session."""
    from ddlvad.train.loop import train

    base = tmp_path_factory.mktemp("run")
    cfg = tiny_config(synth_root, base / "cache", train__max_steps=6)
    train(cfg, base / "run", progress=False)
    return base / "run"
