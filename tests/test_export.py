import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ddlvad.cli import main
from ddlvad.detector import Detector
from ddlvad.export import TOLERANCE

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def _raw(path: Path) -> np.ndarray:
    with path.open() as f:
        return np.array([float(r["raw"]) for r in csv.DictReader(f)])


def test_export_matches_torch_and_predict_backend(run_copy, synth_root, tmp_path, capsys):
    frames = str(synth_root / "testing" / "frames" / "01")
    argv = ["predict", frames, "--run", str(run_copy), "--quiet"]
    assert main(argv + ["--backend", "onnxruntime"]) == 2
    assert "ddlvad export --run" in capsys.readouterr().err  # not exported yet

    assert main(["export", "--run", str(run_copy)]) == 0
    report = json.loads((run_copy / "model.onnx.json").read_text())
    assert report["match"] and report["checked_batches"] == [1, 3]
    assert report["max_abs_diff_recon"] <= TOLERANCE and report["max_abs_diff_score"] <= TOLERANCE
    graph = onnx.load(str(run_copy / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch

    assert main(argv + ["--out", str(tmp_path / "torch")]) == 0
    assert main(argv + ["--out", str(tmp_path / "ort"), "--backend", "onnxruntime"]) == 0
    a, b = _raw(tmp_path / "torch" / "scores.csv"), _raw(tmp_path / "ort" / "scores.csv")
    assert len(a) == len(b) == 30
    np.testing.assert_allclose(b, a, rtol=0, atol=TOLERANCE)

    ort = Detector.from_run(run_copy, backend="onnxruntime")
    assert ort.engine == "clip"  # onnxruntime always runs whole clips
    ckpt = run_copy / "checkpoints" / "last.pt"
    t = (run_copy / "model.onnx").stat().st_mtime + 10
    os.utime(ckpt, (t, t))
    with pytest.raises(ValueError, match="older than"):
        Detector.from_run(run_copy, backend="onnxruntime")
    with pytest.raises(ValueError, match="fp32"):
        Detector.from_run(run_copy, backend="onnxruntime", precision="bf16")
