"""Shipped models: packing, sha256 checks, --model on the verbs, never writing the package."""

import json
import shutil

import numpy as np
import pytest

from ddlvad import zoo
from ddlvad.cli import main
from ddlvad.cli.common import resolve_run
from ddlvad.infer.detector import Detector
from ddlvad.zoo.pack import MAX_FILE_BYTES, pack

INFO = {
    "summary": "tiny synthetic test model",
    "dataset": "synthetic",
    "dataset_flag": "frames",
    "split": "synthetic train/test",
    "preset": "tiny",
    "seed": 0,
    "notes": "",
    "commit": "test",
    "machine": "test",
}


@pytest.fixture(scope="module")
def zoo_root(trained_run, synth_root, tmp_path_factory):
    """A zoo with one entry, 'synth', packed from the tiny session run after testing it."""
    run = tmp_path_factory.mktemp("packed") / "run"
    shutil.copytree(trained_run, run)
    # scored at another patch than the run's 8: the entry's config and threshold follow it
    args = ["test", "--run", str(run), "--root", str(synth_root), "--patch", "4", "--quiet"]
    assert main(args) == 0
    root = tmp_path_factory.mktemp("zoo")
    pack(run, "synth", command="ddlvad train ...", info=INFO, root=root)
    return root


def _snapshot(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_pack_writes_a_verified_weights_only_entry(zoo_root):
    entry = zoo.resolve("synth", zoo_root)
    card = zoo.read_card("synth", zoo_root)
    assert set(card["files"]) >= {"config.yaml", "checkpoints/last.pt", "threshold.json"}
    assert all((entry / f).stat().st_size < MAX_FILE_BYTES for f in card["files"])
    assert 0.0 <= card["metrics"]["frame_auc_micro"] <= 1.0
    assert "frames" in card["reproduce"] and (entry / "MODEL_CARD.md").is_file()
    import torch

    ck = torch.load(entry / "checkpoints" / "last.pt", weights_only=True)
    assert "optim" not in ck and "rng" not in ck and "model" in ck
    cfg_text = (entry / "config.yaml").read_text()
    assert "cache_dir: ''" in cfg_text and "root: ''" in cfg_text
    assert (
        "patch: 4" in cfg_text and json.loads((entry / "threshold.json").read_text())["patch"] == 4
    )
    assert zoo.names(zoo_root) == ["synth"] and "synth:" in zoo.card_line("synth", zoo_root)


def test_tampered_or_missing_file_is_refused(zoo_root, tmp_path):
    root = tmp_path / "zoo"
    shutil.copytree(zoo_root, root)
    ck = root / "synth" / "checkpoints" / "last.pt"
    data = bytearray(ck.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ck.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match=r"last\.pt: sha256 .* does not match"):
        zoo.resolve("synth", root)
    (root / "synth" / "threshold.json").unlink()
    ck.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="missing|does not match"):
        zoo.resolve("synth", root)
    with pytest.raises(zoo.ZooError, match="unknown model 'nope'.*synth"):
        zoo.resolve("nope", root)


def test_model_flag_writes_outputs_outside_the_package(zoo_root, synth_root, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_root)
    before = _snapshot(zoo_root)
    out = tmp_path / "copy"
    args = ["test", "--model", "synth", "--root", str(synth_root), "--out", str(out), "--quiet"]
    assert main(args) == 0
    card = zoo.read_card("synth", zoo_root)
    got = json.loads((out / "metrics.json").read_text())["frame_auc_micro"]
    assert got == pytest.approx(card["metrics"]["frame_auc_micro"], abs=1e-4)
    assert "reproduces" in zoo.check_metrics("synth", out / "metrics.json")  # CI's check
    assert _snapshot(zoo_root) == before  # nothing written into the entry
    # a second run reuses the copy; a folder holding other files under the same names is refused
    assert main(args) == 0
    (out / "threshold.json").write_text("{}")
    with pytest.raises(zoo.ZooError, match="not model 'synth'"):
        zoo.materialize("synth", out)


def test_report_export_and_onnx_predict_with_model_write_only_under_out(
    zoo_root, synth_root, tmp_path, monkeypatch, capsys
):
    """report, export and onnxruntime predict take --model like --run: the writing verbs
    work in the copy at --out (default ./ddlvad-NAME), never in the package."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_root)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(zoo_root)
    # report of a copy that names no dataset: one line naming what is missing and the fix
    assert main(["report", "--model", "synth", "--out", "r1", "--quiet"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "data.root is empty" in err[0] and "--root DIR" in err[0], err
    args = ["report", "--model", "synth", "--out", "r1", "--root", str(synth_root), "--quiet"]
    assert main(args) == 0
    assert (tmp_path / "r1" / "report.html").is_file() and (tmp_path / "r1" / "plots").is_dir()
    # onnxruntime predict before export: says which export writes the graphs it reads
    frames = str(synth_root / "testing" / "frames" / "01")
    onnx_predict = ["predict", frames, "--model", "synth", "--backend", "onnxruntime", "--quiet"]
    assert main(onnx_predict) == 2
    assert "ddlvad export --model synth" in capsys.readouterr().err
    assert main(["export", "--model", "synth", "--no-check"]) == 0  # into ./ddlvad-synth
    assert (tmp_path / "ddlvad-synth" / "model.onnx").is_file()
    assert main(onnx_predict) == 0
    out = tmp_path / "ddlvad-synth" / "predict" / "01"
    assert (out / "scores.csv").is_file()
    assert json.loads((out / "summary.json").read_text())["backend"] == "onnxruntime"
    assert _snapshot(zoo_root) == before  # nothing written into the entry


def test_predict_reads_the_entry_in_place(zoo_root, tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_root)
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(model="synth", run=None, out=None, input="/data/clip.mp4")
    resolve_run(args, "predict")
    assert args.run == str(zoo_root / "synth")
    assert args.out == str(zoo.default_run_dir("synth") / "predict" / "clip")  # not *.mp4


def test_detector_from_pretrained_scores_frames(zoo_root, monkeypatch):
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_root)
    det = Detector.from_pretrained("synth", precision="fp32")
    frames = np.random.default_rng(0).integers(0, 255, (6, 40, 50, 3), dtype=np.uint8)
    raw = det.score(list(frames))
    assert raw.shape == (6,) and np.isfinite(raw).all()
    assert det.threshold is not None


def test_shipped_entries_verify():
    for name in zoo.names():
        entry = zoo.resolve(name)
        card = zoo.read_card(name)
        assert card["metrics"]["frame_auc_micro"] is not None
        assert all((entry / f).stat().st_size < MAX_FILE_BYTES for f in card["files"])


def test_threshold_from_another_protocol_warns(zoo_root, tmp_path):
    run = zoo.materialize("synth", tmp_path / "copy", zoo_root)
    text = (run / "config.yaml").read_text()
    assert "patch: 4" in text
    (run / "config.yaml").write_text(text.replace("patch: 4", "patch: 8"))
    with pytest.warns(RuntimeWarning, match="calibrated at patch 4.*re-calibrate"):
        Detector.from_run(run, precision="fp32")


def test_pack_keeps_the_ema_only_when_the_entry_scores_with_it(synth_root, tmp_path):
    import torch

    from ddlvad.rundir import load_run_config
    from ddlvad.train.loop import train
    from tests.conftest import tiny_config

    run = tmp_path / "run"
    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=4, train__ema=0.9)
    train(cfg, run, progress=False)
    for weights, kept in (("ema", True), ("last", False)):
        cfg = load_run_config(run)
        cfg.score.weights = weights
        cfg.dump(run / "config.yaml")
        assert main(["test", "--run", str(run), "--quiet"]) == 0
        entry = pack(run, weights, command="ddlvad train ...", info=INFO, root=tmp_path / "zoo")
        ck = torch.load(entry / "checkpoints" / "last.pt", weights_only=True)
        assert ("ema" in ck) is kept and ("ema_bn" in ck) is kept and "model" in ck


def test_check_refuses_metrics_scored_under_another_protocol(zoo_root, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_root)
    metrics = zoo.read_card("synth")["metrics"]  # the card's own metrics: they reproduce
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    assert "reproduces" in zoo.check_metrics("synth", path)
    path.write_text(json.dumps({**metrics, "protocol": {**metrics["protocol"], "median": 0}}))
    with pytest.raises(zoo.ZooError, match="another protocol.*median 5 vs 0"):
        zoo.check_metrics("synth", path)
    old = {k: v for k, v in metrics["protocol"].items() if k != "edge"}  # a file without edge
    path.write_text(json.dumps({**metrics, "protocol": old}))
    assert "reproduces" in zoo.check_metrics("synth", path)
