"""serve's parts without a web server: alert rule, zones, alerts.jsonl, hooks, reconnect."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ddlvad.data.sources import SourceError
from ddlvad.infer.capture import Backoff, Grabber, open_capture
from ddlvad.serve.alerts import AlertLog, write_clip
from ddlvad.serve.hooks import ExecHook, Webhook
from ddlvad.serve.rules import AlertRule, RuleConfig, count_alerts
from ddlvad.serve.zones import load_zones, zone_mask, zones_for
from tests.serve_support import Receiver, free_port
from tests.test_predict import _write_avi


def _run(rule: AlertRule, scores, fps: float = 10.0):
    out = [e for i, s in enumerate(scores) for e in rule.push(i, i / fps, s)]
    return out + rule.flush()


def test_rule_min_length_cooldown_and_max_event():
    cfg = RuleConfig(threshold=0.5, min_event_s=0.3, cooldown_s=2.0, max_event_s=100)
    # a 2-frame blip (0.1 s), a 6-frame event, a 5-frame one 1 s later (cooldown), one 3 s on
    s = [0] * 5 + [1] * 2 + [0] * 5 + [1] * 6 + [0] * 10 + [1] * 5 + [0] * 30 + [1] * 5 + [0]
    rule = AlertRule(cfg)
    got = _run(rule, [float(v) for v in s])
    assert [(e.start_frame, e.end_frame) for e in got] == [(12, 17), (63, 67)]
    assert (rule.short, rule.suppressed) == (1, 1) and got[0].frames == 6
    long = AlertRule(RuleConfig(0.5, 0.0, 0.0, max_event_s=1.0))
    got = _run(long, [1.0] * 35)  # decided every 1 s (11 frames); the last 2 frames flushed
    assert [(e.start_frame, e.end_frame, e.open) for e in got][2:] == [
        (22, 32, False),
        (33, 34, True),
    ]
    tail = _run(AlertRule(RuleConfig(0.5, 0.0, 0.0)), [0.0, 1.0, 1.0])
    assert tail[0].open and tail[0].end_frame == 2
    assert count_alerts([0, 1, 1, 1, 0] * 3, 10.0, RuleConfig(0.5, 0.2, 0.0)) == 3


def test_zones_file_and_mask(tmp_path):
    f = tmp_path / "zones.yaml"
    f.write_text('"*":\n  - [[0, 0], [1, 0], [1, 0.5], [0, 0.5]]\ngate: []\n')
    zones = load_zones(f)
    mask = zone_mask(zones_for(zones, "gate"), 8, 10)
    assert mask[:3].sum() == 0 and mask[5:].min() == 1  # the top half ignored
    assert zone_mask([], 8, 10) is None
    bad = tmp_path / "z.json"
    bad.write_text('{"cam": [[[0, 0], [2, 0], [1, 1]]]}')
    with pytest.raises(ValueError, match=r"z\.json: cam: expected a polygon"):
        load_zones(bad)
    bad.write_text("{nope")
    with pytest.raises(ValueError, match=r"z\.json: not valid JSON"):
        load_zones(bad)


def test_zone_mask_zeroes_the_score(trained_run, synth_root):
    from ddlvad.infer.detector import Detector

    det = Detector.from_run(trained_run, precision="fp32")
    H, W, _ = det.size
    frames = [np.asarray(cv2.imread(str(p)))[:, :, ::-1] for p in sorted(
        (synth_root / "testing" / "frames" / "01").glob("*.jpg"))[:6]]  # fmt: skip
    full = zone_mask([[(0, 0), (1, 0), (1, 1), (0, 1)]], H, W)
    for mask, zero in ((None, False), (full, True)):
        sc = det.scorer(keep_error=True, mask=mask)
        for f in frames:
            sc.push(det.prepare(f))
        out = sc.finish()
        assert len(out) == 6 and (max(r.raw for r in out) == 0) == zero
        assert (out[0].error.max() == 0) == zero


def test_alert_log_appends_across_restarts_and_survives_a_torn_line(tmp_path):
    log = AlertLog(tmp_path)
    for _ in range(2):
        log.append({"id": log.new_id(), "end_time": "2026-01-01T00:00:00+00:00"})
    with log.path.open("a") as f:
        f.write('{"id": 3, "end_ti')  # a crash mid-write
    again = AlertLog(tmp_path)
    assert again.new_id() == 3
    again.append({"id": 3, "end_time": "2026-01-02T00:00:00Z"})
    lines = log.path.read_text().splitlines()
    assert [json.loads(ln)["id"] for ln in lines if ln.endswith("}")] == [1, 2, 3]
    assert [r["id"] for r in again.read(since=1767225600.0 + 1)] == [3]


def test_clip_is_webm_vp8(tmp_path):
    jpegs = [cv2.imencode(".jpg", np.full((48, 64, 3), 20 * i, np.uint8))[1].tobytes()
             for i in range(12)]  # fmt: skip
    assert write_clip(tmp_path / "c.webm", jpegs, 10.0) == 12
    data = (tmp_path / "c.webm").read_bytes()
    assert data[:4] == b"\x1a\x45\xdf\xa3" and b"V_VP8" in data  # EBML (WebM), VP8 track
    assert cv2.VideoCapture(str(tmp_path / "c.webm")).read()[0]
    assert not list(tmp_path.glob(".*"))  # no temp file left


def test_webhook_delivers_late_in_order_none_lost_while_receiver_was_down():
    port = free_port()
    hook = Webhook(f"http://127.0.0.1:{port}/", backoff=Backoff(0.05, 0.2), log=lambda s: None)
    hook.start()
    t0 = time.monotonic()
    for i in range(5):
        hook.post({"id": i})  # the receiver is down: queued, never blocking
    assert time.monotonic() - t0 < 0.1
    time.sleep(0.5)
    assert hook.delivered == 0 and hook.failures >= 2 and hook.pending == 5
    rx = Receiver(port)  # back up
    try:
        hook.post({"id": 5})
        deadline = time.monotonic() + 10
        while hook.delivered < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [b["id"] for b in rx.bodies] == list(range(6)) and hook.pending == 0
    finally:
        hook.close(1.0)
        rx.stop()


def test_exec_hook_gets_the_json_on_stdin(tmp_path):
    out = tmp_path / "got.json"
    hook = ExecHook(f'cat > {out}; test "$DDLVAD_ALERT" = "$(cat {out})"', log=print)
    hook.start()
    hook.post({"id": 7, "camera": "gate"})
    hook.close(5.0)
    assert json.loads(out.read_text()) == {"id": 7, "camera": "gate"}
    assert hook.delivered == 1 and hook.failures == 0


def test_a_source_that_disappears_and_returns_is_reconnected(synth_root, tmp_path):
    """An HTTP source: read to its end, the server goes away, comes back: the grabber
    reconnects with backoff, counts it, and its frame numbers go on."""
    import functools
    import http.server
    import threading

    _write_avi(synth_root / "testing" / "frames" / "01", tmp_path / "v.avi")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None

    def up(port: int = 0) -> http.server.HTTPServer:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv

    srv = up()
    port = srv.server_address[1]
    url = f"http://127.0.0.1:{port}/v.avi"
    lines: list[str] = []
    g = Grabber(url, max_queue=1000, backoff=Backoff(0.05, 0.2), log=lines.append)
    srv.shutdown()
    srv.server_close()  # gone before the first read: the first open already retries
    g.start()
    time.sleep(0.6)
    assert g.read == 0 and g.state == "reconnecting" and any("retry in" in ln for ln in lines)
    srv = up(port)
    try:
        deadline = time.monotonic() + 20
        while g.read < 60 and time.monotonic() < deadline:  # two passes: one reconnect at least
            time.sleep(0.05)
        assert g.read >= 60 and g.reconnects >= 1 and g.error is None
        idx = [i for i, _, _ in g.get(1000)]
        assert idx == list(range(len(idx)))
    finally:
        g.stop()
        g.join(5)
        srv.shutdown()
        srv.server_close()


def test_loop_replays_a_file_and_a_missing_file_is_one_line(synth_root, tmp_path):
    avi = _write_avi(synth_root / "testing" / "frames" / "01", tmp_path / "v.avi")
    g = Grabber(str(avi), max_queue=10, loop=True, block=True, max_frames=75, log=print)
    g.start()
    got = []
    while not g.finished():
        got += [i for i, _, _ in g.get(8)]
    assert got == list(range(75)) and g.loops == 2 and g.dropped == 0 and g.reconnects == 0
    with pytest.raises(SourceError, match="nope.avi: video file not found"):
        open_capture(str(Path(tmp_path / "nope.avi")))


def test_predict_live_writes_as_it_goes_and_sigterm_completes_the_outputs(
    trained_run, synth_root, tmp_path
):
    """predict --live (the same reader as serve): scores.csv grows while it runs; SIGTERM
    scores what was read, writes alerts.csv and summary.json, exits 0."""
    import os
    import subprocess
    import sys

    frames = sorted((synth_root / "testing" / "frames" / "01").glob("*.jpg")) * 10
    h, w = cv2.imread(str(frames[0])).shape[:2]
    avi = tmp_path / "long.avi"
    wr = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for f in frames:
        wr.write(cv2.imread(str(f)))
    wr.release()
    out = tmp_path / "p"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "ddlvad", "predict", str(avi), "--live", "--run", str(trained_run)]
    proc = subprocess.Popen([*cmd, "--out", str(out), "--threshold", "0", "--quiet"], env=env)
    try:
        deadline = time.monotonic() + 60
        scores = out / "scores.csv"
        while time.monotonic() < deadline:
            if scores.exists() and len(scores.read_text().splitlines()) > 30:
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(scores.read_text().splitlines()) > 30
        t0 = time.monotonic()
        proc.terminate()
        rc = proc.wait(10)
    finally:
        proc.kill()
    assert rc == 0 and time.monotonic() - t0 < 5
    s = json.loads((out / "summary.json").read_text())
    v = s["videos"]["long.avi"]
    assert v["stopped_by"] == "SIGTERM" and v["interrupted"] and v["frames_scored"] < 300
    rows = scores.read_text().splitlines()
    assert len(rows) == 1 + v["frames_scored"]
    alerts = (out / "alerts.csv").read_text().splitlines()
    assert len(alerts) == 2 and alerts[1].startswith("long.avi,0,")  # one range, closed at stop


def test_threshold_for_alarms_per_hour_is_the_lowest_within_budget():
    from ddlvad.serve.calibrate import threshold_for_rate

    rng = np.random.default_rng(0)
    s = rng.random(36_000) * 0.1  # one hour at 10 fps of noise below 0.1
    for start, h in ((1000, 0.5), (9000, 0.6), (20000, 0.7), (30000, 0.8)):
        s[start : start + 20] = h  # four 2-second bumps
    rule = RuleConfig(0.0, min_event_s=1.0, cooldown_s=5.0)
    for per_hour, thr in ((0, 0.8), (1, 0.7), (2, 0.6), (4, None)):
        r = threshold_for_rate({"v": s}, {"v": 10.0}, per_hour, rule)
        assert r["alarms_allowed"] == per_hour and r["hours"] == 1.0
        assert r["alarms_on_footage"] <= per_hour
        if thr is not None:
            assert r["threshold"] == pytest.approx(thr)  # one step lower raises one more
        else:
            assert r["threshold"] < 0.1  # every bump allowed: down into the noise
    with pytest.raises(ValueError, match="no frames"):
        threshold_for_rate({"v": np.zeros(0)}, {"v": 10.0}, 1, rule)


def test_calibrate_alarms_per_hour_writes_threshold_json(trained_run, synth_root, tmp_path):
    import shutil

    from ddlvad.cli import main

    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    footage = synth_root / "testing" / "frames"
    args = ["calibrate", "--run", str(run), "--alarms-per-hour", "2000", str(footage)]
    assert main([*args, "--fps", "25", "--min-event", "0", "--cooldown", "0"]) == 0
    t = json.loads((run / "threshold.json").read_text())
    assert t["method"] == "alarms_per_hour" and t["alarms_per_hour"] == 2000
    assert t["videos"] == 3 and t["frames"] == 90 and t["alarms_allowed"] == 2  # 3.6 s of it
    assert t["alarms_on_footage"] <= 2 and t["rule"]["cooldown_s"] == 0
    assert "patch" in t and "median" in t  # the protocol the threshold belongs to
    assert main(["calibrate", "--run", str(run), "--alarms-per-hour", "1", str(footage)]) == 2


def test_alert_writer_keeps_lines_in_order_and_bounds_the_clips(tmp_path):
    from ddlvad.serve.alerts import AlertWriter

    jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    got = []
    w = AlertWriter(tmp_path, AlertLog(tmp_path), got.append, max_clips=1)

    def rec() -> dict:
        return {"camera": "gate", "end_time": "2026-01-01T00:00:00Z", "clip_frames": [0, 3]}

    ids = [w.submit(rec(), jpeg, [jpeg] * 4, 10.0) for _ in range(3)]  # writer not started yet
    w.start()
    w.close()
    lines = _lines_of(tmp_path / "alerts.jsonl")
    assert ids == [1, 2, 3] and [r["id"] for r in lines] == ids and got == lines
    assert lines[0]["clip"] == "clips/gate_000001.webm" and (tmp_path / lines[0]["clip"]).is_file()
    assert [r["clip"] for r in lines[1:]] == [None, None]  # one clip was still waiting
    assert "waiting" in lines[1]["clip_skipped"] and w.skipped == 2
    assert all((tmp_path / r["snapshot"]).is_file() for r in lines)

    late = AlertWriter(tmp_path, AlertLog(tmp_path), got.append)
    late.submit(rec(), jpeg, [jpeg] * 4, 10.0)
    late.deadline = 0.0  # the stop deadline has passed before the writer gets to it
    late.start()
    late.close(clip_deadline_s=0.0)  # stopping: the line is written, the clip is not
    last = _lines_of(tmp_path / "alerts.jsonl")[-1]
    assert last["id"] == 4 and last["clip"] is None and "stopping" in last["clip_skipped"]


def _lines_of(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]
