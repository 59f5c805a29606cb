import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ddlvad.cli import main
from ddlvad.data.cache import FrameCache
from ddlvad.infer.detector import Detector
from ddlvad.scoring.post import CausalMedian, CentredMedian, smooth
from ddlvad.scoring.post import ranges_of as alert_ranges
from ddlvad.scoring.reconstruct import reconstruct_video
from ddlvad.train.data import split_holdout
from ddlvad.train.loop import train
from tests.conftest import tiny_config


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _write_avi(frames_dir: Path, out: Path, fps: float = 25.0) -> Path:
    files = sorted(frames_dir.glob("*.jpg"))
    h, w = cv2.imread(str(files[0])).shape[:2]
    wr = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in files:
        wr.write(cv2.imread(str(f)))
    wr.release()
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_predict_equals_test_on_avi_folder_and_frame_folder(run_copy, synth_root, tmp_path):
    """Videos -> .avi; the same frames decoded to PNG make a dataset for `ddlvad test`."""
    root2, vids = tmp_path / "root2", tmp_path / "videos"
    vids.mkdir()
    (root2 / "testing" / "frames").mkdir(parents=True)
    (root2 / "training").symlink_to(synth_root / "training")
    shutil.copy(next(synth_root.glob("*.mat")), root2)
    for d in sorted((synth_root / "testing" / "frames").iterdir()):
        avi = _write_avi(d, vids / f"{d.name}.avi")
        dst = root2 / "testing" / "frames" / d.name
        dst.mkdir()
        cap = cv2.VideoCapture(str(avi))
        for i in range(10_000):
            ok, img = cap.read()
            if not ok:
                break
            cv2.imwrite(str(dst / f"{i:03d}.png"), img)
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    argv = ["test", "--run", str(run_copy), "--root", str(root2), "--quiet", "--set", cache]
    assert main(argv) == 0
    ref = _csv(run_copy / "scores.csv")
    common = ["--run", str(run_copy), "--quiet", "--precision", "fp32"]
    assert main(["predict", str(vids), "--out", str(tmp_path / "p1"), *common]) == 0
    frames02 = root2 / "testing" / "frames" / "02"
    assert main(["predict", str(frames02), "--out", str(tmp_path / "p2"), *common]) == 0
    got = _csv(tmp_path / "p1" / "scores.csv")
    assert [(r["video"], r["frame"], r["raw"], r["smoothed"]) for r in got] == [
        (r["video"], r["frame"], r["raw"], r["smoothed"]) for r in ref
    ]
    got2 = _csv(tmp_path / "p2" / "scores.csv")
    assert [r["raw"] for r in got2] == [r["raw"] for r in ref if r["video"] == "02"]
    assert float(got[0]["time_s"] or 0) == 0 and got[1]["time_s"] == "0.040"  # 25 fps avi


def test_detector_api_matches_reconstruct_video(trained_run, synth_root, tmp_path):
    det = Detector.from_run(trained_run, precision="fp32")
    assert det.threshold_source == "calibrated" and det.threshold > 0
    H, W, C = det.size
    video = FrameCache(tmp_path / "c", progress=False).load(
        synth_root / "testing" / "frames" / "01", H, W, C
    )
    ref, ref_maps = reconstruct_video(
        det.forward.model, video, det.T, batch_size=det.batch_size, patch=8, keep_maps=True
    )
    raw, maps = det.score(np.asarray(video), maps=True)
    np.testing.assert_array_equal(raw, ref)
    np.testing.assert_array_equal(maps, ref_maps)
    files = sorted(video_dir(synth_root).glob("*.jpg"))
    rgb = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
    np.testing.assert_array_equal(det.score(rgb), ref)  # full-size RGB frames: same resize
    fast = Detector.from_run(trained_run, precision="fp32", engine="stream")
    np.testing.assert_allclose(fast.score(np.asarray(video)), ref, rtol=1e-5, atol=1e-6)
    copy_rule = det.protocol.replace(edge="copy")  # the same protocol with another edge rule
    with pytest.warns(RuntimeWarning, match="edge clamp, .* edge copy"):  # threshold.json's
        det = Detector.from_run(trained_run, precision="fp32", protocol=copy_rule)
        fast = Detector.from_run(trained_run, precision="fp32", engine="stream", protocol=copy_rule)
    ref_copy, _ = reconstruct_video(det.forward.model, video, det.T, patch=8, edge="copy")
    np.testing.assert_array_equal(det.score(np.asarray(video)), ref_copy)
    np.testing.assert_allclose(fast.score(np.asarray(video)), ref_copy, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        det.score(np.zeros((3, H, W, C), np.float32))


def test_gray_frames_score_on_a_three_channel_run(tiny_cfg):
    """Gray footage for a run trained on gray copied to three channels is copied the same
    way, not refused: its scores equal those of the three-channel copies."""
    from ddlvad.models import create_model
    from ddlvad.scoring.backends import TorchForward

    tiny_cfg.data.channels = 3
    torch.manual_seed(0)
    det = Detector(tiny_cfg, TorchForward(create_model(tiny_cfg), "fp32", "cpu"))
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 40, 50), dtype=np.uint8)  # not the working size either
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    assert det.prepare(gray[0]).shape == det.size
    np.testing.assert_array_equal(det.score(gray), det.score(rgb))
    np.testing.assert_array_equal(det.score(gray[..., None]), det.score(rgb))


def test_detect_gives_smoothed_scores_and_the_alert_ranges_predict_writes(
    trained_run, synth_root, tmp_path
):
    det = Detector.from_run(trained_run, precision="fp32")
    frames = sorted(video_dir(synth_root).glob("*.jpg"))
    rgb = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in frames]
    found = det.detect(rgb)
    np.testing.assert_array_equal(found.raw, det.score(rgb))
    np.testing.assert_array_equal(found.smoothed, det.smooth(found.raw))
    assert found.alerts == alert_ranges(found.smoothed > det.threshold)
    # a threshold inside the scores' range: alerts exist, and predict writes the same ranges
    thr = float(np.quantile(found.smoothed, 0.6))
    det.threshold = thr
    found = det.detect(rgb)
    assert found.alerts and all(found.smoothed[a : b + 1].min() > thr for a, b in found.alerts)
    out = tmp_path / "p"
    args = [str(video_dir(synth_root)), "--run", str(trained_run), "--out", str(out)]
    assert main(["predict", *args, "--threshold", str(thr), "--quiet", "--precision", "fp32"]) == 0
    written = [(int(r["start_frame"]), int(r["end_frame"])) for r in _csv(out / "alerts.csv")]
    assert written == found.alerts
    det.threshold = None
    assert det.detect(rgb).alerts is None
    with pytest.raises(ValueError, match="no alert threshold"):
        det.alerts(found.smoothed)


def video_dir(root: Path) -> Path:
    return root / "testing" / "frames" / "01"


@pytest.mark.parametrize("window", [0, 1, 4, 5, 17])
def test_streaming_median_matches_smooth(window):
    rng = np.random.default_rng(window)
    for n in (1, 2, 7, 40):
        x = rng.random(n)
        med = CentredMedian(window)
        got = [v for xi in x for v in med.push(float(xi))] + med.finish()
        assert [i for i, _ in got] == list(range(n))
        np.testing.assert_array_equal([v for _, v in got], smooth(x, window))
    causal = CausalMedian(3)
    assert [causal.push(v) for v in (5.0, 1.0, 3.0, 9.0)] == [5.0, 5.0, 3.0, 3.0]


def test_live_stream_stops_after_max_frames_and_on_ctrl_c(trained_run, synth_root, tmp_path):
    avi = _write_avi(video_dir(synth_root), tmp_path / "cam.avi", fps=200)
    out = tmp_path / "live"
    args = ["predict", str(avi), "--run", str(trained_run), "--live", "--out", str(out)]
    assert main([*args, "--max-frames", "25", "--max-queue", "64", "--overlay", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    v = s["videos"]["cam.avi"]
    assert s["mode"] == "live" and s["engine"] == "stream"
    assert v["frames_read"] == 25 and v["frames_scored"] + v["frames_dropped"] == 25
    assert v["frames_dropped"] == 0  # the queue holds the whole run
    rows = _csv(out / "scores.csv")
    assert [int(r["frame"]) for r in rows] == list(range(25))
    assert cv2.VideoCapture(str(out / "overlay.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 25

    from ddlvad.infer.live import run_live

    det = Detector.from_run(trained_run)
    calls = {"n": 0}
    prepare = det.prepare

    def interrupt_after_10(frame):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return prepare(frame)

    det.prepare = interrupt_after_10
    lines = []
    _, stats = run_live(det, str(avi), max_queue=64, pace=200, log=lines.append)
    assert stats["interrupted"] and stats["frames_scored"] == 10
    assert any("interrupted" in line for line in lines)


def test_bad_inputs_give_clear_errors(trained_run, tmp_path, capsys):
    def err(*argv) -> str:
        assert main(["predict", *map(str, argv), "--run", str(trained_run), "--quiet"]) == 2
        return capsys.readouterr().err

    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video" * 100)
    assert "bad.avi: undecodable video" in err(bad)
    assert "nope.mp4: not found" in err(tmp_path / "nope.mp4")
    assert "nope.mp4: not found" in err(tmp_path / "nope.mp4", "--live")
    (tmp_path / "notes.txt").write_text("x")
    assert "notes.txt: expected a folder of frames or a video file" in err(tmp_path / "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty: no frames or videos found" in err(empty)
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "000.png"), np.zeros((32, 32, 3), np.uint8))
    (frames / "001.png").write_bytes(b"\x89PNG broken")
    assert "001.png: unreadable or corrupt image" in err(frames)


def test_holdout_calibration_and_threshold_override(synth_root, tmp_path, capsys):
    videos = {"a": np.zeros((30, 4, 4, 1), np.uint8), "b": np.zeros((2, 4, 4, 1), np.uint8)}
    fit, held = split_holdout(videos, 0.2)
    assert (len(fit["a"]), len(held["a"]), len(fit["b"]), len(held["b"])) == (24, 6, 1, 1)
    assert split_holdout(videos, 0.0) == (videos, {})
    assert alert_ranges(np.array([0, 1, 1, 0, 1], bool)) == [(1, 2), (4, 4)]

    cfg = tiny_config(synth_root, tmp_path / "cache", train__max_steps=2, calib__holdout=0.2)
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["clips"] == 2 * (24 - 2)  # 6 of each video's 30 frames held out
    calib = json.loads((tmp_path / "run" / "threshold.json").read_text())
    assert calib["held_out"] and calib["frames"] == 12 and calib["quantile"] == 0.99
    assert 0 <= calib["false_alarm_rate_on_calibration_frames"] <= 0.1

    out = tmp_path / "p"
    argv = ["predict", str(video_dir(synth_root)), "--run", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--out", str(out), "--threshold", "0"]) == 0
    rows, alerts = _csv(out / "scores.csv"), _csv(out / "alerts.csv")
    assert all(r["alert"] == "1" for r in rows)
    assert [(a["start_frame"], a["end_frame"]) for a in alerts] == [("0", "29")]
    assert json.loads((out / "summary.json").read_text())["threshold_source"] == "cli"
    (tmp_path / "run" / "threshold.json").unlink()
    assert main([*argv, "--out", str(out)]) == 0
    assert "alerts off" in capsys.readouterr().out
    assert _csv(out / "alerts.csv") == []


def test_precision_auto_follows_native_bf16(monkeypatch):
    import ddlvad.scoring.backends as d

    monkeypatch.setattr(d, "native_bf16", lambda: True)
    assert d.resolve_precision("auto", "cpu") == "bf16"
    assert d.resolve_precision("auto", "cuda") == "fp32"
    monkeypatch.setattr(d, "native_bf16", lambda: False)
    assert d.resolve_precision("auto", "cpu") == "fp32"
    assert d.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        d.resolve_precision("fp16", "cpu")


def test_stride_runs_through_test_and_predict_alike_and_is_recorded(run_copy, synth_root, tmp_path):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    run = ["--run", str(run_copy), "--quiet"]
    assert main(["test", *run, "--root", str(synth_root), "--stride", "3", "--set", cache]) == 0
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["protocol"]["stride"] == 3
    ref = [r for r in _csv(run_copy / "scores.csv") if r["video"] == "02"]
    frames02 = synth_root / "testing" / "frames" / "02"
    out = tmp_path / "p"
    argv = ["predict", str(frames02), "--out", str(out), "--precision", "fp32", "--stride", "3"]
    assert main([*argv, *run]) == 0
    assert json.loads((out / "summary.json").read_text())["stride"] == 3
    raw = [r["raw"] for r in _csv(out / "scores.csv")]
    assert raw == [r["raw"] for r in ref]
    r0, r1, r3 = (float(raw[i]) for i in (0, 1, 3))
    assert r0 != r3 and r1 == pytest.approx((2 * r0 + r3) / 3, rel=1e-5)  # linear in between
