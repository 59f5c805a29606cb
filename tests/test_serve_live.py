"""``ddlvad serve`` end to end in a subprocess on a looped synthetic video (tiny run):
the JSON API, alerts.jsonl with snapshot and clip, the webhook, SIGTERM, restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.serve_support import Receiver, ServeProcess
from tests.test_predict import _write_avi

pytest.importorskip("starlette", reason="the serve extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (starlette, uvicorn) is not installed")

# every frame above threshold 0: an alert each second (--max-event 1), none suppressed
ALWAYS = ["--threshold", "0", "--min-event", "0", "--cooldown", "0", "--max-event", "1"]


@pytest.fixture(scope="module")
def cam_avi(synth_root, tmp_path_factory):
    return _write_avi(
        synth_root / "testing" / "frames" / "01", tmp_path_factory.mktemp("v") / "gate.avi"
    )


def _lines(path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_serve_api_alerts_webhook_and_sigterm(trained_run, cam_avi, tmp_path):
    out, rx = tmp_path / "out", Receiver()
    args = [str(cam_avi), "--run", str(trained_run), "--out", str(out), "--loop", *ALWAYS]
    sp = ServeProcess([*args, "--webhook", rx.url])
    try:
        health = sp.json("/api/health")
        assert health["cameras"][0]["name"] == "gate" and "uptime_s" in health
        sp.wait_for(lambda: len(rx.bodies) >= 2, what="two alerts at the receiver")
        cams = sp.json("/api/cameras")
        assert cams[0]["frames_scored"] > 0 and cams[0]["state"] == "live"
        assert sp.get("/api/cameras/gate/frame.jpg")[:2] == b"\xff\xd8"
        alerts = sp.json("/api/alerts")
        a = alerts[0]
        assert a["camera"] == "gate" and a["threshold"] == 0 and a["peak_score"] > 0
        assert sp.get("/files/" + a["snapshot"])[:2] == b"\xff\xd8"
        assert b"V_VP8" in sp.get("/files/" + a["clip"])
        assert sp.json("/api/alerts?since=2100-01-01T00:00:00Z") == []
        assert len(sp.json("/api/alerts?since=" + a["end_time"].replace("+", "%2B"))) >= 1
        with pytest.raises(urllib.error.HTTPError, match="400"):
            sp.get("/api/alerts?since=yesterday")
        rc, seconds = sp.terminate()  # while an event is open (every frame is above 0)
    finally:
        sp.kill()
        rx.stop()
    assert rc == 0 and seconds < 5.0, "\n".join(sp.lines)
    records = _lines(out / "alerts.jsonl")  # every line whole JSON
    assert [r["id"] for r in records] == list(range(1, len(records) + 1))
    last = (out / "gate" / "scores.csv").read_text().splitlines()[-1].split(",")
    # the event SIGTERM cut (every frame is above 0) was decided and written, to its last frame
    assert records[-1]["end_frame"] == int(last[1]) and last[4] == "1"
    summary = json.loads((out / "summary.json").read_text())
    pending = summary["hooks"]["webhook"]["pending"]  # the stop budget ran out for these
    assert rx.bodies == records[: len(rx.bodies)] and len(rx.bodies) + pending == len(records)
    assert len(rx.bodies) >= 2  # the same JSON as alerts.jsonl, in order, none lost
    for r in records:  # a clip may be skipped (clip_skipped) when alerts outpace encoding
        assert (out / r["snapshot"]).is_file() and (
            r["clip"] is None or (out / r["clip"]).is_file()
        )
    assert records[0]["clip"] and "clip_skipped" not in records[0]
    assert summary["stopped_by"] == "SIGTERM"
    assert (out / "gate" / "scores.csv").read_text().startswith("time,frame,raw,score,alert")

    sp = ServeProcess([*args, "--token", "s3cret"])  # restart into the same --out
    try:
        with pytest.raises(urllib.error.HTTPError, match="401"):
            sp.get("/api/health")
        assert sp.json("/api/health?token=s3cret")["cameras"]
        req = urllib.request.Request(
            sp.url + "api/cameras", headers={"Authorization": "Bearer s3cret"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())[0]["name"] == "gate"
        sp.wait_for(lambda: len(_lines(out / "alerts.jsonl")) > len(records), what="an alert")
        rc, _ = sp.terminate()
    finally:
        sp.kill()
    again = _lines(out / "alerts.jsonl")
    assert rc == 0 and [r["id"] for r in again] == list(range(1, len(again) + 1))


def test_serve_refuses_bad_input_in_one_line(trained_run, cam_avi, tmp_path, capsys):
    from ddlvad.cli import main

    base = ["serve", "--run", str(trained_run), "--out", str(tmp_path / "o")]
    assert main([*base, str(tmp_path / "nope.avi")]) == 2
    assert "nope.avi: video file not found" in capsys.readouterr().err
    zones = tmp_path / "z.json"
    zones.write_text('{"other": []}')
    assert main([*base, f"cam={cam_avi}", "--zones", str(zones), "--threshold", "1"]) == 2
    assert "z.json: cameras ['other'] are not among ['cam']" in capsys.readouterr().err
