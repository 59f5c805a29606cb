"""Data and config integrity (issue 16, items 5-8, 11, 12): cache, inputs, checks, errors."""

import fcntl
import os
import shutil

import cv2
import numpy as np
import pytest

from ddlvad.cli import main, make_parser
from ddlvad.cli.calibrate import main as calibrate_main
from ddlvad.cli.common import build_config
from ddlvad.config_check import ConfigError
from ddlvad.data.cache import CacheWarning, FrameCache
from ddlvad.data.layouts import load_dataset
from ddlvad.data.loading import load_videos
from ddlvad.data.records import VideoRecord
from ddlvad.data.sources import SourceError, SourceWarning, VideoFile
from tests.conftest import tiny_config


def _frames(folder, n=4, h=16, w=16):
    folder.mkdir(parents=True)
    for i in range(n):
        img = np.full((h, w, 3), 40 * i + 10, np.uint8)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
        os.utime(folder / f"{i:03d}.png", ns=(10**18 + i, 10**18 + i))
    return folder


# --- 5: frame cache integrity ---------------------------------------------------------


def _damage(entry, kind):
    data = bytearray(entry.read_bytes())
    if kind == "flipped":
        data[200] ^= 0xFF  # a frame byte
    elif kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "empty":
        data = bytearray()
    elif kind == "header":
        data[10:40] = b"garbage garbage garbage garbage"[:30]
    entry.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["flipped", "truncated", "empty", "header"])
def test_damaged_cache_entry_is_rebuilt_with_a_warning(tmp_path, kind):
    src = _frames(tmp_path / "v")
    cache = FrameCache(tmp_path / "c", progress=False)
    good = np.array(cache.load(src, 16, 16, 1))
    (entry,) = (tmp_path / "c").glob("*.npy")
    _damage(entry, kind)
    with pytest.warns(CacheWarning, match=rf"{entry.name}: damaged frame cache entry"):
        again = FrameCache(tmp_path / "c", progress=False).load(src, 16, 16, 1)
    assert np.array_equal(again, good)


def test_fingerprint_notices_swapped_frames(tmp_path):
    src = _frames(tmp_path / "v")
    cache = FrameCache(tmp_path / "c", progress=False)
    first = np.array(cache.load(src, 16, 16, 1))
    os.rename(src / "001.png", src / "tmp.png")  # swap frames 1 and 2 with mv
    os.rename(src / "002.png", src / "001.png")
    os.rename(src / "tmp.png", src / "002.png")
    second = np.array(cache.load(src, 16, 16, 1))
    assert np.array_equal(second[[0, 2, 1, 3]], first)


def test_orphan_temp_files_are_removed_by_the_next_build(tmp_path):
    cache_dir = tmp_path / "c"
    cache_dir.mkdir()
    orphan, busy = cache_dir / ".abc.npy.x1.tmp", cache_dir / ".def.npy.x2.tmp"
    for p in (orphan, busy):
        p.write_bytes(b"half")
        os.utime(p, (1, 1))
    with open(busy, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a build still writing in another process
        FrameCache(cache_dir, progress=False).load(_frames(tmp_path / "v"), 16, 16, 1)
        assert not orphan.exists() and busy.exists()


# --- 6: truncated inputs --------------------------------------------------------------


def test_truncated_jpeg_is_an_error_naming_file_and_frame(tmp_path):
    src = tmp_path / "v"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i}.jpg"), np.random.default_rng(i).integers(0, 255, (32, 32, 3)))
    data = (src / "1.jpg").read_bytes()
    (src / "1.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"1\.jpg: .*truncated JPEG.*frame 1 of its video"):
        FrameCache(tmp_path / "c", progress=False).load(src, 16, 16, 1)
    assert not list((tmp_path / "c").glob("*.npy"))


def test_video_cut_short_warns_or_fails_where_labels_need_it(synth_root, tmp_path):
    path = tmp_path / "cut.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(40):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rec = VideoRecord("cut", path, "train", len(VideoFile(path)))
    cfg = tiny_config(synth_root, tmp_path / "cache")
    with pytest.warns(SourceWarning, match=r"cut\.avi: decoded \d+ frames but .* claims 40"):
        n = len(load_videos([rec], cfg)["cut"])
    assert 0 < n < 40
    rec.labels = np.zeros(40, np.uint8)
    with pytest.raises(SourceError, match=rf"cut\.avi: decoded {n} frames .* labels need 40"):
        load_videos([rec], cfg)


# --- 7: every config value checked up front -------------------------------------------


@pytest.mark.parametrize(
    "setting, key",
    [
        ("train.epochs=-1", "train.epochs"),
        ("train.epochs=0", "train.epochs"),
        ("data.height=0", "data.height"),
        ("data.width=40", "data.width"),
        ("calib.quantile=-1", "calib.quantile"),
        ("train.epochs=abc", "train.epochs"),
        ("train.amp=maybe", "train.amp"),
        ("model.latent=12", "model.latent"),
    ],
)
def test_bad_values_are_refused_before_any_work(synth_root, tmp_path, capsys, setting, key):
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    args = ["train", "--root", str(synth_root), "--preset", "tiny", "--out", str(run)]
    assert main([*args, "--quiet", "--set", setting, f"data.cache_dir={cache}"]) == 2
    err = capsys.readouterr().err
    assert f"{key} = " in err and "expected" in err and err.count("\n") == 1
    assert not run.exists() and not cache.exists()  # nothing decoded, nothing written


def test_repeated_set_flags_accumulate():
    args = make_parser().parse_args(
        ["info", "--root", ".", "--set", "train.epochs=3", "--set", "data.T=5", "score.patch=4"]
    )
    cfg = build_config(args)
    assert (cfg.train.epochs, cfg.data.T, cfg.score.patch) == (3, 5, 4)


def test_config_error_lists_every_bad_key():
    cfg = tiny_config(".", ".")
    cfg.data.height, cfg.calib.quantile = 8, 2.0
    with pytest.raises(ConfigError, match=r"data\.height = 8: .*; calib\.quantile = 2\.0"):
        cfg.validate()


# --- 8: OS, YAML and checkpoint errors are one line, exit 2 ---------------------------


def test_unwritable_out_is_one_line(synth_root, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run"
    base = ["--root", str(synth_root), "--preset", "tiny", "--quiet"]
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    assert main(["train", *base, "--out", str(out), "--set", cache]) == 2
    assert main(["tracks", *base, "--out", str(tmp_path / "file"), "--set", cache]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and str(out) in err[0] and str(tmp_path / "file") in err[1]


VERBS = ["train", "test", "tracks", "predict", "report", "export", "ablate", "demo", "calibrate"]


@pytest.mark.parametrize("verb", VERBS)
def test_read_only_folders_are_one_line_for_every_writing_verb(
    synth_root, trained_run, tmp_path, monkeypatch, capsys, verb
):
    import ddlvad.io

    def denied(*a, dir=None, **k):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(ddlvad.io.tempfile, "mkstemp", denied)
    data = ["--root", str(synth_root), "--preset", "tiny", "--quiet"]
    data += ["--set", f"data.cache_dir={tmp_path / 'cache'}"]
    out = str(tmp_path / "o")
    argv = {
        "train": ["train", *data, "--out", out],
        "test": ["test", "--run", str(trained_run), "--quiet"],
        "tracks": ["tracks", *data, "--out", out],
        "predict": ["predict", "--run", str(trained_run), str(synth_root / "testing/frames/01")],
        "report": ["report", "--run", str(trained_run), "--quiet"],
        "export": ["export", "--run", str(trained_run)],
        "ablate": ["ablate", *data, "--out", out, "--models", "c3dsu", "--modes", "none"],
        "demo": ["demo", "--out", out, "--quiet"],
    }
    if verb == "calibrate":
        rc = calibrate_main(["--run", str(trained_run)])
    else:
        rc = main(argv[verb] + (["--out", out, "--quiet"] if verb == "predict" else []))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]  # (progress bars aside)
    assert rc == 2 and len(lines) == 1 and "Permission denied" in lines[0], err
    assert "Traceback" not in err


def test_malformed_run_config_names_the_file(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "config.yaml").write_text("data: {height: 32\nmodel: [\n")
    assert main(["test", "--run", str(run), "--quiet"]) == 2
    assert calibrate_main(["--run", str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("config.yaml: not valid YAML at line" in e for e in err)
    assert err[1].startswith("python -m ddlvad.calibrate: error:")


# --- 11, 12: forced layouts; pixel masks from files count ------------------------------


@pytest.mark.parametrize("name, what", [("avenue", "CUHK Avenue"), ("shanghaitech", "Shanghai")])
def test_forced_layout_never_falls_back(synth_root, name, what):
    with pytest.raises(SourceError, match=rf"not a {what}\w* layout \(--data {name}\); expected"):
        load_dataset(synth_root, name)


def test_pixel_mask_files_count_as_masked_videos(trained_run, tmp_path, monkeypatch):
    import ddlvad.scoring.evaluate as E
    from ddlvad.data.layouts import load_pixel_masks

    real = E.open_dataset

    def masks_in_files(cfg):  # the synthetic masks as (N, H, W) .npy files, like ShanghaiTech
        ds = real(cfg)
        for rec in ds.test:
            if rec.mask_dir is not None:
                m = load_pixel_masks(rec, 48, 64)
                np.save(tmp_path / f"{rec.name}.npy", m.astype(np.uint8))
                rec.mask_dir, rec.mask_file = None, tmp_path / f"{rec.name}.npy"
        return ds

    monkeypatch.setattr(E, "open_dataset", masks_in_files)
    run = tmp_path / "run"  # a copy: the session's run stays as other tests expect it
    shutil.copytree(trained_run, run)
    m = E.evaluate(run, progress=False)
    assert m["pixel_auc"] is not None and m["pixel_auc_videos"] == 3
