import json
import math
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ddlvad.cli import main
from ddlvad.data.layouts import load_pixel_masks
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.io import json_safe
from ddlvad.models import model_T
from ddlvad.rundir import load_run_config, load_trained
from ddlvad.scoring.evaluate import (
    SCORE_FIELDS,
    evaluate,
    read_scores_csv,
)
from ddlvad.scoring.reconstruct import reconstruct_video


@pytest.fixture
def run_copy(trained_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst)
    return dst


def test_metrics_json_keys_and_pixel_auc_by_hand(run_copy):
    m = evaluate(run_copy, progress=False)
    saved = json.loads((run_copy / "metrics.json").read_text())
    for key in ("frame_auc_micro", "frame_auc_macro", "eer", "ap", "pixel_auc", "protocol"):
        assert key in saved, key
    p = saved["protocol"]
    assert {"patch", "shifted", "median", "normalize", "edge", "pixel_stride"} <= set(p)
    assert p["edge"] == "clamp" and "nearest frame" in p["edge_rule"]
    # what was scored, as the checkpoint record says: the config asks for the EMA
    # (score.weights's default), but the run kept none, so its last weights were scored
    assert load_run_config(run_copy).score.weights == "ema"
    assert p["weights"] == saved["checkpoint"]["weights"] == "last"
    assert p["bn"] == saved["checkpoint"]["bn"] == "clean"
    assert saved["videos"] == 3 and saved["pixel_auc_videos"] == 3
    # pixel AUC recomputed by hand: maps at the working size, every 2nd row and column
    cfg = load_run_config(run_copy)
    _, model = load_trained(run_copy, cfg)
    recs = open_dataset(cfg).test
    videos = load_videos(recs, cfg, False)
    ys, ss = [], []
    for r in recs:
        _, maps = reconstruct_video(
            model, videos[r.name], model_T(cfg.model.name, cfg.data.T), patch=8, keep_maps=True
        )
        ys.append(load_pixel_masks(r, 32, 32)[:, ::2, ::2].ravel())
        ss.append(maps[:, ::2, ::2].ravel())
    expected = roc_auc_score(np.concatenate(ys), np.concatenate(ss))
    assert m["pixel_auc"] == pytest.approx(expected, abs=1e-6)
    assert m["pixel_auc_pixels"] == 90 * 16 * 16


def test_no_masks_gives_null_pixel_auc(run_copy, synth_root, tmp_path):
    root = tmp_path / "nomasks"
    shutil.copytree(synth_root, root)
    shutil.rmtree(root / "testing" / "masks")
    cfg = load_run_config(run_copy)
    cfg.data.root = str(root)
    m = evaluate(run_copy, cfg, progress=False)
    assert m["pixel_auc"] is None and m["pixel_auc_pixels"] == 0
    assert json.loads((run_copy / "metrics.json").read_text())["pixel_auc"] is None


def test_cli_protocol_flags_are_recorded(run_copy, capsys):
    argv = ["test", "--run", str(run_copy), "--quiet", "--patch", "4", "--shifted"]
    argv += ["--median", "0", "--normalize", "--edge", "copy", "--pixel-stride", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "per-video min-max on" in out and "edge copy" in out and "pixel AUC" in out
    m = json.loads((run_copy / "metrics.json").read_text())
    p = m["protocol"]
    assert (p["patch"], p["shifted"], p["median"], p["normalize"], p["edge"]) == (
        4,
        True,
        0,
        True,
        "copy",
    )
    assert p["pixel_stride"] == 1 and m["pixel_auc_pixels"] == 90 * 32 * 32
    assert m["frame_auc_micro"] == pytest.approx(m["frame_auc_micro_normalized"])
    # median 0: the final score is the raw score, min-max normalised per video
    scores = read_scores_csv(run_copy / "scores.csv")
    s = scores["01"]
    raw = s["raw"]
    assert s["smoothed"] == pytest.approx((raw - raw.min()) / (raw.max() - raw.min()), abs=2e-4)
    assert s["raw"][0] == s["raw"][1]  # copy rule: edge frame copies its full-window neighbour
    assert main(["test", "--run", str(run_copy), "--quiet", "--no-normalize"]) == 0
    assert json.loads((run_copy / "metrics.json").read_text())["protocol"]["normalize"] is False


def test_bad_protocol_is_refused(run_copy, capsys):
    assert main(["test", "--run", str(run_copy), "--quiet", "--set", "score.edge=mirror"]) == 2
    assert "score.edge" in capsys.readouterr().err
    assert main(["test", "--run", str(run_copy), "--quiet", "--median", "-1"]) == 2
    assert "score.median" in capsys.readouterr().err


def test_scores_csv_round_trip_and_errors(run_copy, tmp_path):
    evaluate(run_copy, progress=False)
    text = (run_copy / "scores.csv").read_text().splitlines()
    assert text[0].split(",") == SCORE_FIELDS
    scores = read_scores_csv(run_copy / "scores.csv")
    assert sorted(scores) == ["01", "02", "03"] and len(scores["01"]["frame"]) == 30
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected columns"):
        read_scores_csv(bad)
    with pytest.raises(FileNotFoundError, match="ddlvad test"):
        read_scores_csv(tmp_path / "none.csv")


def test_json_safe():
    assert json_safe({"a": math.nan, "b": [1.0, math.inf], "c": "x"}) == {
        "a": None,
        "b": [1.0, None],
        "c": "x",
    }
