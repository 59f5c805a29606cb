"""What a new user meets first: --help without torch, complete help texts, presets, the
overlay codec, the frame-folder time note and one progress bar over the videos."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from importlib import resources

import cv2
import numpy as np
import pytest

from ddlvad.cli import main, make_parser
from ddlvad.cli import predict as cli_args
from ddlvad.infer import overlay
from tests.conftest import train_args

# Builds the parser and prints every verb's help; then names the heavy modules it imported.
HELP_PROBE = """
import contextlib, io, sys
from ddlvad.cli import make_parser
ap = make_parser()
verbs = ap._subparsers._group_actions[0].choices
for argv in [["--help"]] + [[v, "--help"] for v in verbs]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        make_parser().parse_args(argv)
print(" ".join(m for m in ("torch", "sklearn") if m in sys.modules) or "none")
print(len(verbs))
"""


def _verbs(ap: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return ap._subparsers._group_actions[0].choices


def test_help_of_every_verb_imports_neither_torch_nor_sklearn():
    out = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "none", f"--help imported {out[:-1]}"
    assert int(out[-1]) == len(_verbs(make_parser())) >= 9


def test_every_option_has_plain_help():
    ap = make_parser()
    assert "``" not in (ap.description or "") and "``" not in (ap.epilog or "")
    for verb, p in _verbs(ap).items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"ddlvad {verb} {action.option_strings or action.dest}: no help"
            assert "``" not in action.help and "`" not in action.help, (verb, action.help)


def test_preset_help_lists_every_preset_file(capsys):
    names = sorted(
        f.name[: -len(".yaml")]
        for f in resources.files("ddlvad").joinpath("configs").iterdir()
        if f.name.endswith(".yaml")
    )
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out.split("presets (--preset NAME):")[1]
    listed = [line.split()[0] for line in text.strip().splitlines()]
    assert listed == names and {"cpu", "demo", "paper", "tiny"} <= set(names)
    assert all(len(line.split()) > 3 for line in text.strip().splitlines())  # a description


@pytest.mark.parametrize("name", ["paper", "cpu", "cpu-fast", "cpu-legacy"])
def test_real_data_presets_keep_the_papers_16_px_patch_at_256(name):
    """Patch and working size move together: a preset resized without its patch lost 5 to 21
    Ped2 AUC points (README, Scoring protocol)."""
    from ddlvad.config import load_preset

    cfg = load_preset(name)
    assert cfg.score.patch * 256 == 16 * cfg.data.height, (name, cfg.score.patch, cfg.data.height)


def test_cli_choices_match_the_detector():
    from ddlvad import scoring as detector
    from ddlvad.infer.detector import ENGINES

    assert cli_args.BACKENDS == detector.BACKENDS
    assert cli_args.PRECISIONS == detector.PRECISIONS
    assert cli_args.ENGINES == ENGINES


def _frames(n: int = 6) -> list[np.ndarray]:
    return [np.full((45, 61, 3), 20 * i, np.uint8) for i in range(n)]


def _write_overlay(path, frames: list[np.ndarray]) -> overlay.OverlayWriter:
    w = overlay.OverlayWriter(path, 10.0, threshold=0.5, width=160)
    for i, f in enumerate(frames):
        w.write(f, np.full((8, 8), 0.1 * i, np.float32), i, 0.1 * i, i > 4)
    w.close()
    return w


def test_overlay_mp4_prefers_h264_and_is_readable(tmp_path):
    w = _write_overlay(tmp_path / "o.mp4", _frames())
    assert w.codec in ("avc1", "mp4v")
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 6
    assert int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) % 2 == 0  # odd heights break H.264


def test_overlay_falls_back_to_mp4v_without_h264(tmp_path, monkeypatch, capfd):
    real = cv2.VideoWriter
    tried = []

    def writer(path, fourcc, fps, size):
        tried.append(fourcc)
        if fourcc == cv2.VideoWriter_fourcc(*"avc1"):
            os.write(2, b"encoder noise\n")  # as FFmpeg writes: on fd 2, not sys.stderr
            return real()  # an unopened writer, as OpenCV returns without the encoder
        return real(path, fourcc, fps, size)

    monkeypatch.setattr(overlay.cv2, "VideoWriter", writer)
    w = _write_overlay(tmp_path / "o.mp4", _frames())
    assert w.codec == "mp4v" and len(tried) == 2
    assert "encoder noise" not in capfd.readouterr().err  # the failed probe stays quiet
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6


def test_frame_folder_without_fps_says_why_time_is_empty(trained_run, synth_root, tmp_path, capsys):
    folder = next((synth_root / "testing" / "frames").iterdir())
    common = ["predict", str(folder), "--run", str(trained_run), "--precision", "fp32"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert "time_s left empty; pass --fps" in capsys.readouterr().out
    with open(tmp_path / "a" / "scores.csv") as f:
        assert {r["time_s"] for r in csv.DictReader(f)} == {""}
    assert main([*common, "--out", str(tmp_path / "b"), "--fps", "10"]) == 0
    assert "pass --fps" not in capsys.readouterr().out
    with open(tmp_path / "b" / "scores.csv") as f:
        assert [r["time_s"] for r in csv.DictReader(f)][:2] == ["0.000", "0.100"]


def test_one_progress_bar_counts_the_videos(tiny_cfg, capsys):
    from ddlvad.data.loading import load_videos, open_dataset

    records = open_dataset(tiny_cfg).train
    load_videos(records, tiny_cfg, progress=True)
    err = capsys.readouterr().err
    assert f"{len(records)}/{len(records)}" in err and "frames" in err
    assert "cache " not in err  # no per-video bar


def test_long_steps_show_progress_bars_unless_quiet(synth_root, tmp_path, capsys):
    """The end-of-training steps, test and predict on files each show a bar over their
    work (BN batches, frames); --quiet silences every one of them."""
    run, cache = tmp_path / "run", tmp_path / "cache"
    train = [a for a in train_args(synth_root, run, cache, "train.max_steps=2") if a != "--quiet"]
    assert main(train) == 0
    err = capsys.readouterr().err
    assert "BN statistics" in err and "batch/s" in err
    n_train = 2 * 30  # TINY_SPEC: 2 training videos of 30 frames: the threshold scores them
    assert f"threshold:   0%|          | 0/{n_train}" in err
    assert main(["test", "--run", str(run)]) == 0
    assert "scoring:   0%|          | 0/90" in capsys.readouterr().err  # 3 test videos
    frames = str(synth_root / "testing" / "frames" / "01")
    assert main(["predict", frames, "--run", str(run), "--out", str(tmp_path / "p")]) == 0
    assert "01:   0%|          | 0/30" in capsys.readouterr().err
    for argv in (
        ["test", "--run", str(run), "--quiet"],
        ["predict", frames, "--run", str(run), "--out", str(tmp_path / "q"), "--quiet"],
    ):
        assert main(argv) == 0
        assert "%|" not in capsys.readouterr().err
