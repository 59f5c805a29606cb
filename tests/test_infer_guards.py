"""Inference, test and report refuse or flag bad input in one line, and never lose or mix
their outputs: odd file names, model folders, concurrent and failed writes, output folders,
ONNX files, devices, short or cut videos, Ctrl-C and out-of-range flags."""

import errno
import os
import shutil
from pathlib import Path

import pytest

from ddlvad.cli import main
from ddlvad.errors import error_line
from ddlvad.io import atomic_write

LATIN1 = b"caf\xe9"  # "café" in Latin-1: not valid UTF-8
SCORES_SHA = "scores_sha256"  # metrics.json's record of the scores.csv written with it


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def tested(run_copy, synth_root) -> Path:
    """A run copy with `ddlvad test` outputs."""
    assert main(["test", "--run", str(run_copy), "--root", str(synth_root), "--quiet"]) == 0
    return run_copy


def _frames(synth_root: Path) -> Path:
    return synth_root / "testing" / "frames" / "01"


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


# --- 13: every atomic write names its file ------------------------------------------------


def test_atomic_write_errors_name_the_file(tmp_path):
    def no_space(tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "metrics.json"
    with pytest.raises(OSError) as e:
        atomic_write(target, no_space)
    assert e.value.filename == str(target) and e.value.errno == errno.ENOSPC
    assert error_line(e.value).startswith(f"{target}: ") and "disk full" in error_line(e.value)

    def torch_writer(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . file write failed")

    with pytest.raises(RuntimeError, match=f"{target}: could not write"):
        atomic_write(target, torch_writer)
    # a group: the failure of one file publishes none
    from ddlvad.io import atomic_write_group

    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(OSError):
        atomic_write_group(
            {tmp_path / "a.txt": lambda t: Path(t).write_text("new"), target: no_space}
        )
    assert (tmp_path / "a.txt").read_text() == "old" and not target.exists()
    assert not list(tmp_path.glob(".*.tmp"))
