import json

import pytest

from ddlvad.cli import main
from ddlvad.data.layouts import list_scenes, load_dataset
from ddlvad.data.synthetic import SceneSpec, generate_multiscene

SPEC = SceneSpec(height=48, width=64, train_videos=1, test_videos=2, frames=24, seed=5)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return generate_multiscene(tmp_path_factory.mktemp("multi"), ("camA", "camB"), SPEC)


def test_multiscene_layout(multi):
    assert list_scenes(multi, "folder") == ["camA", "camB"]
    ds = load_dataset(multi, "folder", "camB")
    assert [r.name for r in ds.train] == ["camB_01"]
    assert [r.name for r in ds.test] == ["camB_01", "camB_02"]
    assert all(r.labels is not None and r.labels.any() for r in ds.test)


def test_train_and_test_per_scene_with_median(multi, tmp_path, capsys):
    out = tmp_path / "scenes"
    args = [
        "train",
        "--data",
        "folder",
        "--root",
        str(multi),
        "--scene",
        "all",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--quiet",
        "--set",
        "train.max_steps=2",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["scene_camA", "scene_camB"]
    capsys.readouterr()
    assert main(["test", "--run", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "scenes.json").read_text())
    aucs = sorted(v["frame_auc_micro"] for v in doc["scenes"].values())
    assert doc["median_frame_auc_micro"] == pytest.approx(sum(aucs) / 2)  # median of two
    assert "scene camA" in printed and "median over 2 scenes" in printed
    # the protocol flags and --set reach every scene as they reach a single run
    assert (
        main(["test", "--run", str(out), "--quiet", "--patch", "4", "--set", "score.median=3"]) == 0
    )
    for scene in ("camA", "camB"):
        p = json.loads((out / f"scene_{scene}" / "metrics.json").read_text())["protocol"]
        assert (p["patch"], p["median"]) == (4, 3)
    stamp = (out / "scene_camA" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(args) == 0  # finished scenes are not retrained
    assert (out / "scene_camA" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
