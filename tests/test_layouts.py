"""Every dataset layout, built small in its exact on-disk format; and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from ddlvad.data.layouts import (
    check_clip_length,
    detect_layout,
    list_scenes,
    load_dataset,
    load_pixel_masks,
)
from ddlvad.data.sources import SourceError

H, W = 24, 32


def frame(i: int) -> np.ndarray:
    return np.full((H, W, 3), 20 + 10 * i, np.uint8)


def write_frames(folder: Path, n: int, ext: str = ".jpg", start: int = 0, digits: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i + start:0{digits}d}{ext}"), frame(i))
    return folder


def write_avi(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    for i in range(n):
        w.write(frame(i))
    w.release()
    return path


def box_masks(n: int, on: list[int]) -> np.ndarray:
    """(n, H, W) uint8 0/1 masks with a box in the frames listed in ``on``."""
    m = np.zeros((n, H, W), np.uint8)
    for i in on:
        m[i, 4:12, 8:20] = 1
    return m


def cell(arrays: list[np.ndarray]) -> np.ndarray:
    c = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        c[0, i] = a
    return c


def labels(ds, split: str = "test") -> dict[str, list[int]]:
    recs = ds.test if split == "test" else ds.train
    return {r.name: None if r.labels is None else r.labels.tolist() for r in recs}


# --- UCSD, original release ----------------------------------------------------------


def make_ucsd(parent: Path) -> Path:
    root = parent / "UCSDped2"
    write_frames(root / "Train" / "Train001", 5, ".tif", start=1)
    write_frames(root / "Train" / "Train002", 6, ".tif", start=1)
    write_frames(root / "Test" / "Test001", 5, ".tif", start=1)
    write_frames(root / "Test" / "Test002", 4, ".tif", start=1)
    gt = root / "Test" / "Test001_gt"
    gt.mkdir()
    for i, m in enumerate(box_masks(5, [1, 2])):
        cv2.imwrite(str(gt / f"{i + 1:03d}.bmp"), m * 255)
    (root / "Test" / "UCSDped2.m").write_text(
        "TestVideoFile = {};\n% a comment: gt_frame = [9:9];\n"
        "TestVideoFile{end+1}.gt_frame = [2:3];\nTestVideoFile{end+1}.gt_frame = [1:2, 4];\n"
    )
    return root


def test_ucsd_original(tmp_path):
    root = make_ucsd(tmp_path)
    for where in (root, tmp_path):  # the dataset folder, or the folder holding it
        assert detect_layout(where) == "ucsd"
        ds = load_dataset(where)
        assert ds.layout == "ucsd" and ds.root == root
        assert [(r.name, r.n_frames) for r in ds.train] == [("Train001", 5), ("Train002", 6)]
        assert labels(ds) == {"Test001": [0, 1, 1, 0, 0], "Test002": [1, 1, 0, 1]}
    masks = load_pixel_masks(ds.test[0], 12, 16)
    assert masks.shape == (5, 12, 16) and masks.dtype == bool
    assert masks.any(axis=(1, 2)).tolist() == [False, True, True, False, False]
    assert load_pixel_masks(ds.test[1], 12, 16) is None  # Test002 ships no _gt folder
    assert list_scenes(root) == []


def test_ucsd_wrong_label_count_and_mask_count(tmp_path):
    root = make_ucsd(tmp_path)
    (root / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [2:3];\n")
    with pytest.raises(SourceError, match=r"UCSDped2\.m: 1 label entries but 2 test videos"):
        load_dataset(root)
    (root / "Test" / "UCSDped2.m").write_text("gt_frame = [2:3];\ngt_frame = [3:9];\n")
    with pytest.raises(SourceError, match=r"UCSDped2\.m: video Test002 labels reach frame 9 but"):
        load_dataset(root)
    (root / "Test" / "UCSDped2.m").write_text("gt_frame = [2:3];\ngt_frame = [3:4];\n")
    (root / "Test" / "Test001_gt" / "005.bmp").unlink()
    rec = load_dataset(root).test[0]
    with pytest.raises(SourceError, match=r"Test001_gt: 4 pixel masks but video Test001 has 5"):
        load_pixel_masks(rec, 8, 8)


# --- re-packaged frames layout (Ped1/Ped2, Avenue) -------------------------------------


def make_frames(root: Path, name: str = "ped2") -> Path:
    for v, n in (("01", 4), ("02", 5)):
        write_frames(root / "training" / "frames" / v, n)
    for v, n in (("01", 5), ("02", 3)):
        write_frames(root / "testing" / "frames" / v, n)
    savemat(root / f"{name}.mat", {"gt": cell([np.array([[2], [3]]), np.array([[1], [3]])])})
    return root


def test_frames_layout_with_mat_or_npy(tmp_path):
    root = make_frames(tmp_path / "ped2")
    ds = load_dataset(root, "auto")
    assert ds.layout == "frames" and [r.n_frames for r in ds.train] == [4, 5]
    assert labels(ds) == {"01": [0, 1, 1, 0, 0], "02": [1, 1, 1]}
    (root / "ped2.mat").unlink()
    np.save(root / "frame_labels_ped2.npy", np.array([[0, 0, 0, 1, 1, 0, 1, 0]]))
    assert labels(load_dataset(root)) == {"01": [0, 0, 0, 1, 1], "02": [0, 1, 0]}
    np.save(root / "frame_labels_ped2.npy", np.zeros(7))
    with pytest.raises(SourceError, match=r"frame_labels_ped2\.npy: 7 labels but the 2 test"):
        load_dataset(root)


def test_frames_layout_label_past_the_end(tmp_path):
    root = make_frames(tmp_path / "ped2")
    savemat(root / "ped2.mat", {"gt": cell([np.array([[2], [3]]), np.array([[1], [4]])])})
    with pytest.raises(SourceError, match=r"ped2\.mat: video 02 labels reach frame 4 but the"):
        load_dataset(root)


def test_avenue_frames_copy_loads_with_data_avenue(tmp_path):
    root = make_frames(tmp_path / "avenue", "avenue")
    ds = load_dataset(root, "avenue")
    assert ds.layout == "frames" and labels(ds)["01"] == [0, 1, 1, 0, 0]


# --- CUHK Avenue ---------------------------------------------------------------------


def make_avenue(root: Path) -> Path:
    write_avi(root / "training_videos" / "01.avi", 6)
    write_avi(root / "training_videos" / "02.avi", 4)
    write_avi(root / "testing_videos" / "01.avi", 5)
    write_avi(root / "testing_videos" / "02.avi", 3)
    lab = root / "ground_truth_demo" / "testing_label_mask"
    lab.mkdir(parents=True)
    savemat(lab / "1_label.mat", {"volLabel": cell(list(box_masks(5, [3, 4])))})
    savemat(lab / "2_label.mat", {"volLabel": cell(list(box_masks(3, [])))})
    return root


def test_avenue(tmp_path):
    root = make_avenue(tmp_path / "Avenue Dataset")
    assert detect_layout(root) == "avenue"
    ds = load_dataset(root)
    assert [(r.name, r.n_frames) for r in ds.train] == [("01", 6), ("02", 4)]
    assert labels(ds) == {"01": [0, 0, 0, 1, 1], "02": [0, 0, 0]}
    masks = load_pixel_masks(ds.test[0], H, W)
    assert masks.shape == (5, H, W) and masks[3].sum() == 8 * 12 and not masks[0].any()
    lab = root / "ground_truth_demo" / "testing_label_mask" / "2_label.mat"
    savemat(lab, {"volLabel": cell(list(box_masks(4, [])))})
    with pytest.raises(SourceError, match=r"2_label\.mat: video 02 has 4 labels but 3 frames"):
        load_dataset(root)
    lab.unlink()
    with pytest.raises(SourceError, match=r"2_label\.mat: missing; expected a volLabel mask"):
        load_dataset(root)


# --- ShanghaiTech --------------------------------------------------------------------


def make_shanghaitech(root: Path) -> Path:
    write_avi(root / "training" / "videos" / "01_001.avi", 4)
    write_avi(root / "training" / "videos" / "02_001.avi", 5)
    write_frames(root / "testing" / "frames" / "01_0014", 4)
    write_frames(root / "testing" / "frames" / "02_0001", 5)
    fm, pm = root / "testing" / "test_frame_mask", root / "testing" / "test_pixel_mask"
    fm.mkdir(parents=True)
    pm.mkdir()
    np.save(fm / "01_0014.npy", np.array([0, 1, 1, 0]))
    np.save(fm / "02_0001.npy", np.array([0, 0, 0, 0, 1]))
    np.save(pm / "01_0014.npy", box_masks(4, [1, 2]))
    return root


def test_shanghaitech_and_scenes(tmp_path):
    root = make_shanghaitech(tmp_path / "shanghaitech")
    assert detect_layout(root) == "shanghaitech"
    assert list_scenes(root) == ["01", "02"]
    ds = load_dataset(root)
    assert [r.name for r in ds.train] == ["01_001", "02_001"]
    assert labels(ds) == {"01_0014": [0, 1, 1, 0], "02_0001": [0, 0, 0, 0, 1]}
    masks = load_pixel_masks(ds.test[0], 12, 16)
    assert masks.any(axis=(1, 2)).tolist() == [False, True, True, False]
    assert load_pixel_masks(ds.test[1], 12, 16) is None
    for scene in ("02", "2"):
        one = load_dataset(root, "shanghaitech", scene=scene)
        assert [r.name for r in one.train + one.test] == ["02_001", "02_0001"]
    with pytest.raises(SourceError, match=r"unknown scene '14'; known scenes: 01, 02"):
        load_dataset(root, scene="14")


def test_shanghaitech_label_length(tmp_path):
    root = make_shanghaitech(tmp_path / "st")
    np.save(root / "testing" / "test_frame_mask" / "02_0001.npy", np.zeros(6))
    with pytest.raises(SourceError, match=r"02_0001\.npy: video 02_0001 has 6 labels but 5"):
        load_dataset(root)


# --- folder --------------------------------------------------------------------------


def make_folder(root: Path) -> Path:
    write_avi(root / "cam1_001.avi", 5)
    write_frames(root / "cam1_002", 4, ".png", start=1, digits=1)
    write_avi(root / "cam2_001.avi", 6)
    (root / "notes.txt").write_text("not a video")
    return root


def test_folder_without_and_with_labels(tmp_path):
    root = make_folder(tmp_path / "footage")
    assert detect_layout(root) == "folder"
    ds = load_dataset(root)
    assert [(r.name, r.n_frames) for r in ds.train] == [("cam1_001", 5), ("cam1_002", 4)] + [
        ("cam2_001", 6)
    ]
    assert ds.test == []
    assert list_scenes(root) == ["cam1", "cam2"]
    assert [r.name for r in load_dataset(root, "folder", "cam2").train] == ["cam2_001"]
    csv = "video,start,end\ncam2_001.avi,2,3\ncam2_001,6,6\ncam1_002,,\n"
    (root / "labels.csv").write_text(csv)
    ds = load_dataset(root)
    assert [r.name for r in ds.train] == ["cam1_001"]
    assert labels(ds) == {"cam1_002": [0, 0, 0, 0], "cam2_001": [0, 1, 1, 0, 0, 1]}
    assert all(r.split == "test" for r in ds.test)
    with pytest.raises(SourceError, match=r"unknown scene 'cam9'; known scenes: cam1, cam2"):
        load_dataset(root, "folder", "cam9")


def test_folder_split_dirs_and_csv_errors(tmp_path):
    root = tmp_path / "f"
    write_avi(root / "train" / "a.avi", 4)
    write_frames(root / "test" / "b", 3)
    write_avi(root / "test" / "c.avi", 3)
    ds = load_dataset(root)
    assert labels(ds, "train") == {"a": None} and labels(ds) == {"b": None, "c": None}
    assert list_scenes(root) == []
    (root / "labels.csv").write_text("b,1,1\n")
    assert labels(load_dataset(root)) == {"b": [1, 0, 0], "c": [0, 0, 0]}
    (root / "labels.csv").write_text("a,1,1\n")
    with pytest.raises(SourceError, match=r"labels\.csv: video 'a' is not one of the test videos"):
        load_dataset(root)
    (root / "labels.csv").write_text("b,2,4\n")
    with pytest.raises(SourceError, match=r"labels\.csv: video b labels reach frame 4 but the vid"):
        load_dataset(root)
    (root / "labels.csv").write_text("b,two,4\n")
    with pytest.raises(SourceError, match=r"labels\.csv: line 1 'b,two,4'; expected video,start"):
        load_dataset(root)


# --- layout detection and other bad input --------------------------------------------


def test_unknown_layout_empty_root_and_forced_layouts(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"empty: empty folder, unknown dataset layout"):
        load_dataset(empty)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match=r"empty: unknown dataset layout; expected"):
        load_dataset(empty)
    with pytest.raises(SourceError, match=r"empty: not a CUHK Avenue layout \(--data avenue\); e"):
        load_dataset(empty, "avenue")
    with pytest.raises(SourceError, match=r"empty: missing Train/ and Test/; expected the orig"):
        load_dataset(empty, "ucsd")
    with pytest.raises(SourceError, match=r"unknown layout 'nope'"):
        load_dataset(empty, "nope")
    with pytest.raises(SourceError, match=r"unknown scene '3'; known scenes: none"):
        load_dataset(make_frames(tmp_path / "ped2"), scene="3")


def test_empty_video_folder_in_a_layout(tmp_path):
    root = make_frames(tmp_path / "ped2")
    (root / "testing" / "frames" / "03").mkdir()
    with pytest.raises(SourceError, match=r"frames/03: empty folder, expected frames"):
        load_dataset(root)


def test_clip_length_checks_name_the_file(tmp_path):
    ds = load_dataset(make_frames(tmp_path / "ped2"))
    check_clip_length(ds.train, 3)
    with pytest.raises(SourceError, match=r"training/frames/01: 4 frames, shorter than the clip"):
        check_clip_length(ds.train, 5)
    with pytest.raises(SourceError, match=r"T = 4: expected an odd clip length"):
        check_clip_length(ds.train, 4)


def test_wrong_container_count_is_measured_before_a_label_check(tmp_path, monkeypatch):
    from ddlvad.data import records
    from ddlvad.data.sources import VideoFile

    class Lying(VideoFile):  # the container claims two frames more than it holds
        def __init__(self, path):
            super().__init__(path)
            self._n += 2

    monkeypatch.setattr(records, "VideoFile", Lying)
    ds = load_dataset(make_avenue(tmp_path / "avenue"))
    assert [r.n_frames for r in ds.test] == [5, 3]  # exact, and the labels fit
    assert [r.n_frames for r in ds.train] == [8, 6]  # unlabelled: the container's count
