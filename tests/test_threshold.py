"""An alert threshold is a finite number: never written, read or taken from a flag as NaN."""

import json
import math
import shutil

import pytest
import torch

from ddlvad.cli import main
from ddlvad.rundir import load_threshold, load_trained
from ddlvad.train.calibrate import write_threshold
from ddlvad.train.loop import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def finished(synth_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("finished")
    cfg = tiny_config(synth_root, base / "cache", train__max_steps=3)
    train(cfg, base / "run", progress=False)
    return base / "run", cfg


def test_calibration_never_writes_a_non_finite_threshold(finished, tmp_path):
    ref, _ = finished
    run = shutil.copytree(ref, tmp_path / "run")
    before = (run / "threshold.json").read_bytes()
    cfg, model = load_trained(run)
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)
    with pytest.raises(ValueError, match=r"threshold\.json: not written: .*threshold nan"):
        write_threshold(run, cfg, model, "cpu")
    assert (run / "threshold.json").read_bytes() == before


def test_nan_threshold_is_refused_in_the_file_and_the_flag(finished, tmp_path, capsys):
    ref, cfg = finished
    run = shutil.copytree(ref, tmp_path / "run")
    video = cfg.data.root + "/testing/frames/01"
    out = ["--out", str(tmp_path / "p"), "--quiet"]
    assert main(["predict", "--run", str(run), video, *out, "--threshold", "nan"]) == 2
    doc = json.loads((run / "threshold.json").read_text())
    (run / "threshold.json").write_text(json.dumps({**doc, "threshold": math.nan}))
    with pytest.raises(ValueError, match=r"threshold\.json: threshold = nan: expected a finite"):
        load_threshold(run)
    assert main(["predict", "--run", str(run), video, *out]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--threshold: threshold = nan" in err[0]
    assert "threshold.json: threshold = nan" in err[1]
    assert not (tmp_path / "p").exists()
