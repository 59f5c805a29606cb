"""DDP under torchrun with the gloo backend, on CPU, on a tiny synthetic dataset."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from ddlvad.train.loop import train
from tests.conftest import tiny_config

SETS = ["train.batch_size=4", "pseudo.no_track=random", "data.height=32", "data.width=32"]


def _ddp(root, out, cache, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable,
        "-m",
        "ddlvad",
        "train",
        "--nproc",
        "2",
        "--root",
        str(root),
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--quiet",
        "--set",
        *SETS,
        f"data.cache_dir={cache}",
        *extra,
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "train_summary.json").read_text())


def _steps(run):
    with (run / "train_log.csv").open() as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_ddp_matches_single_process_and_syncs_sigma(synth_root, tmp_path):
    cache = tmp_path / "cache"
    s = _ddp(synth_root, tmp_path / "ddp", cache, "train.max_steps=3")
    assert s["world_size"] == 2
    assert s["sigma_per_rank"][0] == s["sigma_per_rank"][1] != 0.5  # one l, synchronised
    cfg = tiny_config(
        synth_root, cache, train__max_steps=3, train__batch_size=4, pseudo__no_track="random"
    )
    single = train(cfg, tmp_path / "single", progress=False)
    assert single["steps"] == s["steps"]  # same global batch -> same number of steps
    a = torch.load(tmp_path / "ddp/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "single/checkpoints/last.pt", weights_only=True)
    # Same clips, masks and noise per step; what differs is BatchNorm statistics (per rank
    # on CPU: SyncBatchNorm needs a GPU), and Adam's sign-like first steps amplify that.
    # Measured relative L2 distance of the parameters: 0.12 after 1 step, 0.25 after 3,
    # 0.58 after 28; sigma differed by 1e-4 after 3 steps and 6e-4 after 28.
    names = [k for k in b["model"] if "running" not in k and "num_batches" not in k]
    num = sum(float((a["model"][k] - b["model"][k]).norm() ** 2) for k in names)
    den = sum(float(b["model"][k].norm() ** 2) for k in names)
    assert (num / den) ** 0.5 < REL_TOL
    assert abs(s["sigma"] - single["sigma"]) < SIGMA_TOL


def test_rank_batches_partition_the_global_batch(synth_root):
    from torch.utils.data import DistributedSampler

    clips = list(range(56))
    whole = list(DistributedSampler(clips, num_replicas=1, rank=0, seed=7))
    parts = [list(DistributedSampler(clips, num_replicas=2, rank=r, seed=7)) for r in (0, 1)]
    for k in range(56 // 4):  # global batch 4 = 2 per rank
        assert sorted(parts[0][2 * k : 2 * k + 2] + parts[1][2 * k : 2 * k + 2]) == sorted(
            whole[4 * k : 4 * k + 4]
        )


def test_ddp_resume(synth_root, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "ddp"
    first = _ddp(synth_root, out, cache, "train.epochs=2", "train.max_steps=7")
    assert first["steps"] == 7
    ck = torch.load(out / "checkpoints/last.pt", weights_only=True)
    assert ck["epoch"] == 0
    # the cap is lifted: the resume finishes epoch 0 (from batch 7) and trains epoch 1
    second = _ddp(synth_root, out, cache, "train.epochs=2", "train.max_steps=0", "--resume")
    steps = _steps(out)
    assert steps == list(range(1, len(steps) + 1)) and second["steps"] == steps[-1] > 7


REL_TOL = 0.35
SIGMA_TOL = 0.002


@pytest.mark.parametrize("n", [3])
def test_global_batch_must_divide(n):
    from ddlvad.train.distributed import DistContext, local_batch

    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        local_batch(4, DistContext(world_size=n))
