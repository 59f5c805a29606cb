"""Inference, test and report refuse or flag bad input in one line, and never lose or mix
their outputs: odd file names, model folders, concurrent and failed writes, output folders,
ONNX files, devices, short or cut videos, Ctrl-C and out-of-range flags."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddlvad import zoo
from ddlvad.cli import main, make_parser
from ddlvad.errors import error_line
from ddlvad.infer.detector import Detector
from ddlvad.io import atomic_write
from ddlvad.rundir import claim_run
from tests.test_predict import _csv, _write_avi

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


# --- 4: file names that are not UTF-8 ----------------------------------------------------


def test_non_utf8_video_name_is_refused_before_opencv(synth_root, tmp_path):
    """OpenCV crashes the process on such a name (exit -11): run in a child process."""
    root = os.fsencode(tmp_path / "videos")
    os.makedirs(root)
    avi = _write_avi(_frames(synth_root), tmp_path / "videos" / "v.avi")
    os.rename(avi, root + b"/" + LATIN1 + b".avi")
    argv = [sys.executable, "-m", "ddlvad", "info", "--data", "folder", "--root", root]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    line = _one_error_line(done.stderr)
    assert "caf\\xe9.avi" in line and "not valid UTF-8" in line


def test_non_utf8_frame_folder_is_named(trained_run, synth_root, tmp_path, capsys):
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/" + LATIN1)
    shutil.copytree(_frames(synth_root), folder)
    argv = ["predict", folder, "--run", str(trained_run), "--out", str(tmp_path / "p"), "--quiet"]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "caf\\xe9" in line and "not valid UTF-8" in line


def test_non_utf8_config_is_named(run_copy, capsys):
    with (run_copy / "config.yaml").open("ab") as f:
        f.write(b"name: " + LATIN1 + b"\n")
    assert main(["test", "--run", str(run_copy), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(run_copy / "config.yaml") in line and "not UTF-8" in line


# --- 5: a model folder cannot write outside --out ----------------------------------------


def _model_folder(run: Path, folder: Path, extra: dict[str, str]) -> Path:
    """A --model PATH folder from a run: config, checkpoint, card.json listing ``extra`` too."""
    (folder / "checkpoints").mkdir(parents=True)
    files = {}
    for rel in ("config.yaml", "checkpoints/last.pt"):
        shutil.copyfile(run / rel, folder / rel)
        files[rel] = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
    (folder / "card.json").write_text(json.dumps({"files": {**files, **extra}}))
    return folder


def test_card_names_never_leave_the_entry_or_the_copy(trained_run, synth_root, tmp_path, capsys):
    payload = tmp_path / "payload" / "p.txt"
    payload.parent.mkdir()
    payload.write_text("x")
    digest = hashlib.sha256(b"x").hexdigest()
    model = _model_folder(trained_run, tmp_path / "m", {"../payload/p.txt": digest})
    out = tmp_path / "zt" / "a"
    argv = ["test", "--model", str(model), "--root", str(synth_root), "--out", str(out)]
    assert main([*argv, "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "../payload/p.txt" in line and "outside" in line
    assert not (tmp_path / "zt" / "payload").exists()
    with pytest.raises(zoo.ZooError, match="outside"):
        zoo.inside(out, "/etc/passwd", model / "card.json")


def test_model_help_says_a_path_runs_a_model_from_outside():
    sub = make_parser()._subparsers._group_actions[0].choices["test"]
    text = next(a.help for a in sub._actions if "--model" in a.option_strings)
    assert "PATH" in text and "outside the package" in text and "not signed" in text


# --- 6, 13: test takes the run's lock and publishes its files together --------------------


def test_test_takes_the_run_lock(run_copy, capsys):
    with claim_run(run_copy):
        assert main(["test", "--run", str(run_copy), "--quiet"]) == 2
    assert "in use by another ddlvad process" in _one_error_line(capsys.readouterr().err)
    assert not (run_copy / "scores.csv").exists()


def test_disk_full_during_test_publishes_nothing_and_names_the_file(tested, monkeypatch, capsys):
    names = ("scores.csv", "scores.csv.json", "metrics.json")
    before = {n: (tested / n).read_bytes() for n in names}
    real_text, real_bytes = Path.write_text, Path.write_bytes

    def full(real):
        def write(self, data, *a, **k):
            if self.name.startswith(".metrics.json."):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(self, data, *a, **k)

        return write

    monkeypatch.setattr(Path, "write_text", full(real_text))
    monkeypatch.setattr(Path, "write_bytes", full(real_bytes))
    assert main(["test", "--run", str(tested), "--median", "0", "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(tested / "metrics.json") in line and "disk full" in line
    assert {n: (tested / n).read_bytes() for n in names} == before
    assert not list(tested.glob(".*.tmp"))


def test_report_refuses_outputs_that_do_not_belong_together(tested, capsys):
    metrics = json.loads((tested / "metrics.json").read_text())
    scores = (tested / "scores.csv").read_bytes()
    assert metrics[SCORES_SHA] == hashlib.sha256(scores).hexdigest()
    (tested / "scores.csv").write_bytes(scores.replace(b",0,", b",0,9", 1))  # another writer's
    assert main(["report", "--run", str(tested), "--quiet"]) == 2
    assert "do not belong together" in _one_error_line(capsys.readouterr().err)
    # outputs of an older ddlvad (no sha256): the sidecar's protocol must match metrics'
    side = json.loads((tested / "scores.csv.json").read_text())
    del metrics[SCORES_SHA], side[SCORES_SHA]
    side["protocol"]["median"] = 0
    (tested / "metrics.json").write_text(json.dumps(metrics))
    (tested / "scores.csv.json").write_text(json.dumps(side))
    assert main(["report", "--run", str(tested), "--quiet"]) == 2
    assert "protocol records differ" in _one_error_line(capsys.readouterr().err)


def test_report_notes_a_checkpoint_newer_than_the_metrics(tested):
    path = tested / "checkpoints" / "last.pt"
    ck = torch.load(path, weights_only=True)
    ck["step"] += 1  # training went on after `ddlvad test`
    torch.save(ck, path)
    with pytest.warns(RuntimeWarning, match="has changed since"):
        assert main(["report", "--run", str(tested), "--quiet", "--clips", "1"]) == 0
    assert "these metrics are not the current model" in (tested / "report.html").read_text()


# --- 7: predict's output folder --------------------------------------------------------


def test_predict_output_never_resolves_to_or_above_the_run(
    run_copy, synth_root, tmp_path, monkeypatch, capsys
):
    one = tmp_path / "clips" / "one"
    shutil.copytree(_frames(synth_root), one)
    monkeypatch.chdir(one)
    assert main(["predict", "..", "--run", str(run_copy), "--quiet"]) == 0
    assert not (run_copy / "scores.csv").exists()
    assert (run_copy / "predict" / "clips" / "scores.csv").is_file()
    for out in (run_copy / "predict" / "..", run_copy.parent):
        assert main(["predict", str(one), "--run", str(run_copy), "--out", str(out)]) == 2
        assert "run folder" in _one_error_line(capsys.readouterr().err)
    from ddlvad.rundir import predict_dir, safe_name

    assert safe_name("..") == safe_name(".") == safe_name("") == "input"
    assert predict_dir("R", "a/clip.mp4") == Path("R/predict/clip")  # not named like a video
    assert predict_dir("R", "a/frames.d") == Path("R/predict/frames.d")  # a folder's own name


# --- 8, 9: ONNX files from other weights, or not ONNX at all ------------------------------


def test_onnx_exported_from_other_weights_is_refused(run_copy):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", "--run", str(run_copy)]) == 0
    assert Detector.from_run(run_copy, backend="onnxruntime").engine == "clip"
    path = run_copy / "checkpoints" / "last.pt"
    ck = torch.load(path, weights_only=True)
    ck["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, path)
    t = path.stat().st_mtime + 10
    for name in ("model.onnx", "model_encoder.onnx", "model_head.onnx"):
        os.utime(run_copy / name, (t, t))  # newer than the checkpoint, as a copied file is
    for engine in ("clip", "stream"):
        with pytest.raises(ValueError, match="records checkpoint sha256"):
            Detector.from_run(run_copy, backend="onnxruntime", engine=engine)


def test_garbage_onnx_file_is_one_line(run_copy, synth_root, capsys):
    pytest.importorskip("onnxruntime")
    (run_copy / "model.onnx").write_bytes(b"not a protobuf" * 50)
    argv = ["predict", str(_frames(synth_root)), "--run", str(run_copy), "--quiet"]
    assert main([*argv, "--backend", "onnxruntime"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "model.onnx: not a loadable ONNX model" in line


# --- 10: report --frames out of range ----------------------------------------------------


def test_report_frames_out_of_range_is_one_line(tested, capsys):
    argv = ["report", "--run", str(tested), "--compare", str(tested), "--frames", "01:9999"]
    assert main([*argv, "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "01:9999" in line and "frames 0..29" in line


# --- 11: a device this machine lacks ------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_predict_on_a_missing_cuda_device_is_one_line(trained_run, synth_root, tmp_path, capsys):
    argv = ["predict", str(_frames(synth_root)), "--run", str(trained_run)]
    assert main([*argv, "--device", "cuda", "--out", str(tmp_path / "p")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--device 'cuda'" in line and "no CUDA device" in line


# --- 12 and short videos: warned and recorded ---------------------------------------------


def _cut(avi: Path, fraction: float) -> Path:
    data = avi.read_bytes()
    cut = avi.with_name("cut.avi")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def test_truncated_video_is_warned_and_recorded(trained_run, synth_root, tmp_path):
    cut = _cut(_write_avi(_frames(synth_root), tmp_path / "v.avi"), 0.6)
    out = tmp_path / "p"
    with pytest.warns(UserWarning, match=r"cut.avi: decoded \d+ of the 30 frames"):
        assert main(["predict", str(cut), "--run", str(trained_run), "--out", str(out)]) == 0
    v = json.loads((out / "summary.json").read_text())["videos"]["cut"]
    assert v["frames_expected"] == 30 and 0 < v["frames"] < 30
    assert f"decoded {v['frames']} of the 30 frames" in v["warnings"][0]

    from ddlvad.infer.live import run_live

    det = Detector.from_run(trained_run)
    with pytest.warns(UserWarning, match="the stream ended after"):
        _, stats = run_live(det, str(cut), max_queue=64, log=lambda s: None)
    assert stats["frames_expected"] == 30 and stats["frames_scored"] == stats["frames_read"] < 30


def test_one_frame_video_is_warned(trained_run, synth_root, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(sorted(_frames(synth_root).iterdir())[0], one)
    out = tmp_path / "p"
    with pytest.warns(UserWarning, match="fewer than the model's 3-frame window"):
        assert main(["predict", str(one), "--run", str(trained_run), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["videos"]["one"]["warnings"]


# --- Ctrl-C: one line; predict keeps what it scored ---------------------------------------


def _ctrl_c_after(monkeypatch, n: int) -> None:
    calls = {"n": 0}
    prepare = Detector.prepare

    def interrupt(self, frame):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt
        return prepare(self, frame)

    monkeypatch.setattr(Detector, "prepare", interrupt)


def test_ctrl_c_during_predict_keeps_the_frames_scored(
    trained_run, synth_root, tmp_path, monkeypatch, capsys
):
    _ctrl_c_after(monkeypatch, 12)
    out = tmp_path / "p"
    argv = ["predict", str(_frames(synth_root)), "--run", str(trained_run), "--out", str(out)]
    try:
        rc = main([*argv, "--batch-size", "1", "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert rc == 130
    assert "interrupted" in _one_error_line(capsys.readouterr().err)
    frames = [int(r["frame"]) for r in _csv(out / "scores.csv")]
    assert 0 < len(frames) < 30 and frames == list(range(len(frames)))
    assert json.loads((out / "summary.json").read_text())["videos"]["01"]["interrupted"]


def test_ctrl_c_during_test_is_one_line_and_writes_nothing(run_copy, monkeypatch, capsys):
    import ddlvad.scoring.evaluate as ev

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "score_split", interrupt)
    try:
        rc = main(["test", "--run", str(run_copy), "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert rc == 130 and "interrupted" in _one_error_line(capsys.readouterr().err)
    assert not (run_copy / "scores.csv").exists() and not (run_copy / "metrics.json").exists()


# --- flags checked by the parser ----------------------------------------------------------


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--fps", "-5"),
        ("--fps", "nan"),
        ("--median", "-1"),
        ("--threads", "-2"),
        ("--max-frames", "-3"),
        ("--batch-size", "-1"),
    ],
)
def test_bad_predict_numbers_fail_at_parse_time(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        make_parser().parse_args(["predict", "x.avi", "--run", "R", flag, value])
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}: expected" in last and repr(value) in last


def test_even_median_window_is_accepted():
    args = make_parser().parse_args(["predict", "x.avi", "--run", "R", "--median", "4"])
    assert args.median == 4


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
