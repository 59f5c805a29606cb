import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ddlvad.cli import main
from ddlvad.infer.detector import Detector
from ddlvad.infer.export import TOLERANCE
from ddlvad.rundir import ONNX_STREAM_FILES

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
    argv = ["predict", frames, "--run", str(run_copy), "--quiet", "--precision", "fp32"]
    assert main(argv + ["--backend", "onnxruntime"]) == 2
    assert "ddlvad export --run" in capsys.readouterr().err  # not exported yet

    assert main(["export", "--run", str(run_copy)]) == 0
    report = json.loads((run_copy / "model.onnx.json").read_text())
    assert report["match"] and set(report["files"]) == {"model.onnx", *ONNX_STREAM_FILES}
    for path in ("clip", "stream"):
        assert max(report[path].values()) <= TOLERANCE
    for name in report["files"]:
        graph = onnx.load(str(run_copy / name)).graph
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic

    assert main(argv + ["--out", str(tmp_path / "torch")]) == 0
    assert main(argv + ["--out", str(tmp_path / "ort"), "--backend", "onnxruntime"]) == 0
    ort_stream = ["--backend", "onnxruntime", "--engine", "stream"]
    assert main(argv + ["--out", str(tmp_path / "ort_stream"), *ort_stream]) == 0
    a = _raw(tmp_path / "torch" / "scores.csv")
    assert len(a) == 30
    for out in ("ort", "ort_stream"):
        np.testing.assert_allclose(_raw(tmp_path / out / "scores.csv"), a, rtol=0, atol=TOLERANCE)

    assert Detector.from_run(run_copy, backend="onnxruntime", engine="stream").engine == "stream"
    ckpt = run_copy / "checkpoints" / "last.pt"
    t = (run_copy / "model.onnx").stat().st_mtime + 10
    os.utime(ckpt, (t, t))
    with pytest.raises(ValueError, match="older than"):
        Detector.from_run(run_copy, backend="onnxruntime")
    with pytest.raises(ValueError, match="fp32"):
        Detector.from_run(run_copy, backend="onnxruntime", precision="bf16")


def test_onnx_graphs_of_a_fast_path_model(tiny_cfg, tmp_path):
    """The graphs of a model on the fast path (as created, as the bench uses it) export and
    match it, and the model stays on the fast path."""
    import torch

    from ddlvad.infer.export import onnx_graphs, save_onnx
    from ddlvad.models import create_model
    from ddlvad.scoring.backends import OrtForward

    model = create_model(tiny_cfg).eval()
    fast = [m.fast for m in model.modules() if hasattr(m, "fast")]
    assert fast and all(fast)
    for name, module, args, names in onnx_graphs(model, tiny_cfg):
        save_onnx(tmp_path / name, module, args, names, {})
    assert all(m.fast for m in model.modules() if hasattr(m, "fast"))
    d = tiny_cfg.data
    X = torch.rand(2, d.channels, model.T, d.height, d.width)
    with torch.inference_mode():
        want = model(X)
    got = OrtForward(tmp_path / "model.onnx")(X)
    assert float((got - want).abs().max()) <= TOLERANCE
