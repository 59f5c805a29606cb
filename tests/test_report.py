import base64
import json
import shutil
from html.parser import HTMLParser

import pytest

from ddlvad.api import Run
from ddlvad.cli import main
from ddlvad.report.page import parse_frames
from tests.conftest import tiny_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Collect(HTMLParser):
    """Every <img src>, every href/src attribute, and the open-tag stack balance."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        self.refs += [v or "" for k, v in attrs if k in ("href", "src")]
        if tag not in ("img", "meta", "br", "hr"):
            self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.tags and self.tags[-1] == tag, f"unbalanced </{tag}>"
        self.tags.pop()


@pytest.fixture(scope="module")
def report_runs(trained_run, synth_root, tmp_path_factory):
    """A copy of the tiny DDL run (without test results) and a tiny run without DDL."""
    from ddlvad.train.loop import train

    base = tmp_path_factory.mktemp("report")
    run = base / "ddl"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("metrics.json", "scores.csv"))
    other = base / "none"
    cfg = tiny_config(synth_root, base / "cache", train__max_steps=3, pseudo__mode="none")
    train(cfg, other, progress=False)
    return run, other


def test_report_is_self_contained(report_runs):
    run, other = report_runs
    out = Run(run).report(compare=other, progress=False)  # runs `test` first
    assert out == run / "report.html" and (run / "metrics.json").exists()
    text = out.read_text()
    p = Collect()
    p.feed(text)
    p.close()
    assert p.tags == []  # every element closed: the page parses cleanly
    assert p.imgs and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    assert all(r.startswith("data:") for r in p.refs)  # nothing outside the file
    for src in p.imgs:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    plots = sorted((run / "plots").glob("*.png"))
    names = {f.name for f in plots}
    expected = {"roc.png", "sigma_trajectory.png", "fig4_pseudo_anomalies.png", "fig7_compare.png"}
    assert expected | {f"timeline_0{i}.png" for i in (1, 2, 3)} <= names
    assert all(f.stat().st_size > 0 for f in plots)
    assert len(p.imgs) == len(plots)  # every plot is in the page
    assert 'class="note"' not in text  # every section was drawn
    for words in ("frame AUC, micro", "pixel AUC", "Figure 4", "Figures 7/8", "Resolved config"):
        assert words in text, words
    thr = json.loads((run / "threshold.json").read_text())["threshold"]
    assert f"Threshold {thr:.6g} (the 0.99 quantile" in text and "<td>01</td>" in text


def test_report_notes_missing_sections_and_cli(report_runs, capsys):
    _, other = report_runs
    assert main(["report", "--run", str(other), "--quiet", "--max-videos", "1"]) == 0
    assert "report.html" in capsys.readouterr().out
    text = (other / "report.html").read_text()
    assert "Figure 4 not drawn" in text and "pseudo.mode is &#x27;none&#x27;" in text
    assert "sigma trajectory not drawn" in text
    assert len(list((other / "plots").glob("timeline_*.png"))) == 1


def test_report_compare_frames_option(report_runs, capsys):
    run, other = report_runs
    argv = ["report", "--run", str(run), "--compare", str(other), "--frames", "02:5,03:0"]
    assert main(argv + ["--quiet", "--clips", "1"]) == 0
    assert (run / "plots" / "fig7_compare.png").stat().st_size > 0
    assert parse_frames("a:1, b_2:30") == [("a", 1), ("b_2", 30)]
    with pytest.raises(ValueError, match="VIDEO:FRAME"):
        parse_frames("01-3")
    argv = ["report", "--run", str(run), "--compare", str(other), "--frames", "99:1", "--quiet"]
    assert main(argv) == 0
    assert "Figure 7/8 not drawn" in (run / "report.html").read_text()
