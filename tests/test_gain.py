"""score.gain: causal brightness calibration of test footage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ddlvad.data.cache import FrameCache
from ddlvad.infer.detector import Detector
from ddlvad.rundir import TRAIN_SUMMARY, load_run_config
from ddlvad.scoring.gain import Gain, RunningGain, apply_gain, gain_for_run
from ddlvad.scoring.protocol import ScoreProtocol
from ddlvad.scoring.reconstruct import reconstruct_video


@pytest.mark.parametrize("window", [1, 4, 1000])
def test_whole_video_equals_the_stream_frame_by_frame(window):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (23, 8, 10, 1), dtype=np.uint8)
    video[10:] //= 2  # the exposure drops mid-video
    g = Gain(100.0, window)
    stream = RunningGain(g)
    np.testing.assert_array_equal(apply_gain(video, g), np.stack([stream.push(f) for f in video]))


def test_a_darker_video_is_brought_back_to_the_training_level():
    rng = np.random.default_rng(1)
    video = rng.integers(60, 180, (12, 16, 16, 1), dtype=np.uint8)
    mu = float(video.mean())
    dark = np.rint(video * 0.75).astype(np.uint8)
    out = apply_gain(dark, Gain(mu, 100))
    assert abs(float(out.mean()) - mu) < 0.5 < abs(float(dark.mean()) - mu)
    # rounding, and early frames whose running mean is their own (within 2 % of mu)
    assert np.abs(out.astype(int) - video.astype(int)).max() <= 3
    with pytest.raises(ValueError, match="window"):
        Gain(mu, 0)


def test_detector_and_test_agree_with_gain_on(trained_run, synth_root, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    cfg = load_run_config(run)
    cfg.score.gain = 5
    cfg.dump(run / "config.yaml")
    gain = gain_for_run(run, ScoreProtocol.from_config(cfg))
    mu = json.loads((run / TRAIN_SUMMARY).read_text())["frame_mean"]
    assert gain == Gain(mu, 5) and 0 < mu < 255
    with pytest.warns(RuntimeWarning, match="gain 0, but the config scores with.*gain 5"):
        det = Detector.from_run(run, precision="fp32")  # threshold.json was set without gain
    H, W, C = det.size
    video = FrameCache(tmp_path / "c", progress=False).load(
        synth_root / "testing" / "frames" / "01", H, W, C
    )
    dim = (video * 0.6).astype(np.uint8)
    kw = dict(batch_size=det.batch_size, patch=cfg.score.patch)
    ref, _ = reconstruct_video(det.forward.model, dim, det.T, gain=gain, **kw)
    np.testing.assert_array_equal(det.score(dim), ref)  # stream path == whole-video path
    off, _ = reconstruct_video(det.forward.model, dim, det.T, **kw)
    assert not np.allclose(ref, off)


def test_gain_without_training_brightness_names_the_file(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    summary = json.loads((run / TRAIN_SUMMARY).read_text())
    del summary["frame_mean"]
    (run / TRAIN_SUMMARY).write_text(json.dumps(summary))
    cfg = load_run_config(run)
    assert gain_for_run(run, ScoreProtocol.from_config(cfg)) is None  # off: nothing needed
    cfg.score.gain = 10
    with pytest.raises(ValueError, match="train_summary.json.*frame_mean"):
        gain_for_run(run, ScoreProtocol.from_config(cfg))
