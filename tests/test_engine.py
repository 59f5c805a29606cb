"""The scoring engine: every backend and both modes (a whole video, frames pushed one by one)
give the same scores; the protocol object's record, reading and comparison."""

import json
import shutil

import numpy as np
import pytest
import torch

from ddlvad.data.cache import FrameCache
from ddlvad.infer.detector import Detector
from ddlvad.infer.export import export_onnx
from ddlvad.rundir import load_run_config, load_trained
from ddlvad.scoring.backends import TorchForward, ort_forward
from ddlvad.scoring.engine import ScoreEngine, engine_for_run
from ddlvad.scoring.frame import error_map
from ddlvad.scoring.post import ScorePipeline
from ddlvad.scoring.protocol import ScoreProtocol

PROTOCOLS = {
    "clamp": {},
    "copy": {"edge": "copy", "patch": 4, "shifted": True},
    "gain": {"gain": 4, "median": 3},
}


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    run = tmp_path_factory.mktemp("engine") / "run"
    shutil.copytree(trained_run, run)
    assert export_onnx(run)["match"]
    return run


@pytest.fixture(scope="module")
def video(exported, synth_root, tmp_path_factory):
    cfg = load_run_config(exported)
    d = cfg.data
    cache = FrameCache(tmp_path_factory.mktemp("cache"), progress=False)
    v = cache.load(synth_root / "testing" / "frames" / "02", d.height, d.width, d.channels)
    return (np.asarray(v) * 0.8).astype(np.uint8)  # darker than training: gain matters


def backends(run):
    """name -> (backend, stream engine?) for every backend the engine runs."""
    _, model = load_trained(run)
    torch_fw = TorchForward(model, "fp32", "cpu")
    return {
        "torch clip": (torch_fw, False),
        "torch stream": (torch_fw, True),
        "onnxruntime clip": (ort_forward(run), False),
        "onnxruntime stream": (ort_forward(run, stream=True), True),
    }


def pushed(engine: ScoreEngine, frames) -> np.ndarray:
    """Frames pushed one by one, a batch scored whenever one is ready (as predict does)."""
    s, out = engine.session(), []
    for f in frames:
        s.push(f)
        if s.ready():
            out += s.run()
    out += s.finish()
    assert [r.index for r in out] == list(range(len(frames)))
    return np.array([r.raw for r in out], dtype=np.float32)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_backend_and_both_modes_give_the_same_scores(exported, video, name):
    cfg = load_run_config(exported)
    protocol = ScoreProtocol.from_config(cfg).replace(**PROTOCOLS[name])
    ref = None
    for label, (fw, stream) in backends(exported).items():
        engine = engine_for_run(exported, protocol, fw, cfg.model_T, batch_size=4, stream=stream)
        assert engine.mode == ("stream" if stream else "clip")
        whole, maps = engine.score_video(video, keep_maps=True)
        assert whole.shape == (len(video),) and maps.shape == (len(video), *video.shape[1:3])
        np.testing.assert_array_equal(pushed(engine, list(video)), whole, err_msg=label)
        if ref is None:
            ref = whole  # torch clip: the reference scores of ``ddlvad test``
        np.testing.assert_allclose(whole, ref, rtol=0, atol=1e-5, err_msg=label)
    if name == "copy":  # the edge rule: edge frames copy the nearest full window
        assert ref[0] == ref[1] and ref[-1] == ref[-2]


def test_detector_scores_through_the_engine(exported, video):
    det = Detector.from_run(exported, precision="fp32")
    cfg = load_run_config(exported)
    engine = engine_for_run(
        exported, det.protocol, TorchForward(det.forward.model, "fp32", "cpu"), det.T
    )
    raw = engine.score_video(video)[0]
    np.testing.assert_array_equal(det.score(video), raw)
    np.testing.assert_array_equal(det.smooth(raw), ScorePipeline(det.protocol).alert(raw))
    assert det.batch_size == cfg.score.batch_size


@pytest.mark.parametrize("median", [0, 5, 8])
def test_pipeline_stream_equals_whole_video(median):
    raw = np.random.default_rng(median).random(23).astype(np.float32)
    post = ScorePipeline(ScoreProtocol(median=median))
    s = post.stream()
    got = [v for r in raw for v in s.push(float(r))] + s.finish()
    assert [i for i, _ in got] == list(range(len(raw)))
    np.testing.assert_array_equal([v for _, v in got], post.alert(raw))
    live = post.stream(live=True)
    assert [len(live.push(float(r))) for r in raw] == [1] * len(raw)  # causal: at once
    final = post.final(raw, True)  # per-video min-max: whole videos only
    assert final.min() == 0.0 and final.max() == 1.0


def test_protocol_record_read_and_compared():
    p = ScoreProtocol(patch=8, median=5)
    assert ScoreProtocol.from_record(p.record(), ScoreProtocol()) == p
    old = {"threshold": 0.1, "patch": 8, "shifted": False, "median": 5, "gain": 0}  # no edge
    assert ScoreProtocol.from_record(old, p.replace(edge="copy")).edge == "copy"
    assert p.replace(median=None) == p  # a flag not given changes nothing
    assert p.differences(p.replace(patch=4, gain=2)) == ["patch 8 vs 4", "gain 0 vs 2"]
    assert p.replace(normalize=True).alert() == p
    with pytest.raises(ValueError, match="score.median"):
        p.replace(median=-1)
    with pytest.raises(ValueError, match="score.edge"):
        p.replace(edge="mirror")
    with pytest.raises(ValueError, match="unknown score protocol keys"):
        p.replace(window=3)


def test_threshold_json_records_the_alert_protocol(trained_run):
    calib = json.loads((trained_run / "threshold.json").read_text())
    cfg = load_run_config(trained_run)
    recorded = ScoreProtocol.from_record(calib, ScoreProtocol(patch=1))
    assert recorded == ScoreProtocol.from_config(cfg).alert()
    assert set(ScoreProtocol.names()) <= set(calib)


def test_engine_refuses_a_gain_it_was_not_given(trained_run):
    _, model = load_trained(trained_run)
    with pytest.raises(ValueError, match="score.gain = 5"):
        ScoreEngine(ScoreProtocol(gain=5), TorchForward(model, "fp32", "cpu"), 3)


class Counting:
    """A clip backend that counts the windows it is given."""

    precision, streams = "fp32", False

    def __init__(self, fw: TorchForward) -> None:
        self.fw, self.windows = fw, 0

    def __call__(self, X):
        self.windows += len(X)
        return self.fw(X)


@pytest.mark.parametrize(
    ("edge", "stride", "batch"), [("clamp", 3, 1), ("clamp", 4, 4), ("copy", 2, 3)]
)
def test_stride_scores_every_kth_frame_and_the_rest_linear_in_between(
    exported, video, edge, stride, batch
):
    cfg = load_run_config(exported)
    T, r, n = cfg.model_T, cfg.model_T // 2, len(video)
    base = ScoreProtocol.from_config(cfg).replace(edge=edge, gain=0)
    fw = TorchForward(load_trained(exported)[1], "fp32", "cpu")
    full = ScoreEngine(base, fw, T, batch_size=batch).score_video(video)[0]
    last = n - 1 - r if edge == "copy" else n - 1  # the last full window
    scored = [i for i in range(last + 1) if i % stride == 0 or (edge == "copy" and i <= r)]
    want = np.interp(np.arange(n), scored, full[scored])  # flat past the ends: copies, holds
    counting = Counting(fw)
    engine = ScoreEngine(base.replace(stride=stride), counting, T, batch_size=batch)
    got, maps = engine.score_video(video, keep_maps=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert counting.windows == len([i for i in scored if edge == "clamp" or i >= r])
    assert maps.shape == (n, *video.shape[1:3])
    stream = ScoreEngine(base.replace(stride=stride), fw, T, batch_size=batch, stream=True)
    np.testing.assert_allclose(pushed(stream, list(video)), want, rtol=0, atol=1e-5)


def test_power_squares_the_error_map_and_is_recorded():
    x, y = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    y[0, :, 0, 0] = 2.0  # distance sqrt(12) at one pixel
    assert torch.isclose(error_map(x, y)[0, 0, 0], torch.tensor(12.0).sqrt())
    assert torch.isclose(error_map(x, y, 2)[0, 0, 0], torch.tensor(12.0))
    p = ScoreProtocol(power=2)
    assert "power 2" in p.describe() and "power" not in ScoreProtocol().describe()
    assert ScoreProtocol.from_record({"patch": 16}, p).power == 2  # old records: as compared
    with pytest.raises(ValueError, match="score.power"):
        ScoreProtocol(power=0)
