"""The dashboard in a real headless browser (Debian's chromium + chromedriver, driven by
Selenium; no browser is downloaded): live scores update, an alert appears with its
snapshot, and its clip plays (readyState reaches HAVE_ENOUGH_DATA)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.serve_support import ServeProcess
from tests.test_predict import _write_avi

pytest.importorskip("starlette", reason="the serve extra (starlette, uvicorn) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "no chromium / chromedriver on PATH: install Debian's chromium and chromium-driver "
        "(.ci/run does) to run the dashboard's browser test",
        allow_module_level=True,
    )


SEQ = "const c = document.getElementById('cam-gate'); return c ? +(c.dataset.seq || 0) : 0"


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(flag)
    opts.add_argument("--autoplay-policy=no-user-gesture-required")
    drv = webdriver.Chrome(options=opts, service=Service(DRIVER))
    yield drv
    drv.quit()


def _until(fn, timeout: float = 60.0, what: str = ""):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}")


def test_dashboard_shows_live_scores_alert_snapshot_and_playable_clip(
    browser, trained_run, synth_root, tmp_path
):
    avi = _write_avi(synth_root / "testing" / "frames" / "01", tmp_path / "gate.avi")
    args = [str(avi), "--run", str(trained_run), "--out", str(tmp_path / "out"), "--loop"]
    sp = ServeProcess([*args, "--threshold", "0", "--min-event", "0", "--max-event", "1"])
    try:
        browser.get(sp.url)

        def seq() -> int:
            return int(browser.execute_script(SEQ))

        first = _until(seq, what="the first scores on the page")
        _until(lambda: seq() > first + 5, what="the scores to update live")
        score = browser.execute_script(
            "return document.querySelector('#cam-gate [data-key=score]').textContent"
        )
        assert score.startswith("score: ") and float(score.split(": ")[1]) > 0
        assert browser.execute_script(  # the live frame (with heatmap) loaded
            "const i = document.querySelector('#cam-gate img.frame'); "
            "return i.complete && i.naturalWidth > 0"
        )
        _until(
            lambda: browser.execute_script(
                "const i = document.querySelector('#cam-gate .alert-item img.snapshot'); "
                "return i && i.complete && i.naturalWidth > 0"
            ),
            what="an alert with its snapshot",
        )
        browser.execute_script("document.querySelector('.alert-item video.clip').play()")
        state = _until(lambda: browser.execute_script(
            "const v = document.querySelector('.alert-item video.clip'); "
            "return v.readyState === 4 && !v.error ? [v.readyState, v.duration] : null"),
            timeout=30, what="the clip to reach readyState 4")  # fmt: skip
        assert state[0] == 4 and state[1] > 0
    finally:
        rc, _ = sp.terminate()
        sp.kill()
    assert rc == 0
