import cv2
import numpy as np
import pytest
import torch
from scipy.io import savemat

from ddlvad.data.cache import FrameCache
from ddlvad.data.clips import EvalClips
from ddlvad.data.labels import ranges_to_labels, read_range_mat, read_ucsd_m
from ddlvad.data.layouts import load_dataset
from ddlvad.data.sources import FrameFolder, SourceError, VideoFile, natural_key, open_source
from ddlvad.data.synthetic import SceneSpec, generate
from ddlvad.train.clips import TrainClips, translate
from tests.conftest import TINY_SPEC


def test_synthetic_layout_loads_with_labels_and_masks(synth_root):
    ds = load_dataset(synth_root)
    assert ds.layout == "frames"
    assert [r.name for r in ds.train] == ["01", "02"]
    assert len(ds.test) == 3 and all(r.n_frames == TINY_SPEC.frames for r in ds.test)
    for r in ds.test:
        assert r.labels is not None and r.labels.shape == (TINY_SPEC.frames,)
        assert 0 < r.labels.sum() < TINY_SPEC.frames  # each test video has an anomaly
        # the label says anomalous exactly where the pixel mask is non-empty
        masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(r.mask_dir.iterdir())]
        assert np.array_equal(r.labels, np.array([int(m.any()) for m in masks]))


def test_synthetic_is_deterministic(tmp_path):
    spec = SceneSpec(height=32, width=48, train_videos=1, test_videos=1, frames=12, seed=7)
    a, b = generate(tmp_path / "a", spec), generate(tmp_path / "b", spec)
    fa = (a / "testing/frames/01/005.jpg").read_bytes()
    assert fa == (b / "testing/frames/01/005.jpg").read_bytes()
    assert (a / "synthetic.mat").exists()


def test_ucsd_m_and_mat_labels(tmp_path):
    m = tmp_path / "UCSDped2.m"
    m.write_text(
        "TestVideoFile{end+1}.gt_frame = [61:180];\n"
        "TestVideoFile{end+1}.gt_frame = [1:10, 20:22];\n"
    )
    assert read_ucsd_m(m) == [[(61, 180)], [(1, 10), (20, 22)]]
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.array([[61], [180]])
    cells[0, 1] = np.array([[1, 20], [10, 22]])
    savemat(tmp_path / "ped2.mat", {"gt": cells})
    assert read_range_mat(tmp_path / "ped2.mat") == [[(61, 180)], [(1, 10), (20, 22)]]
    y = ranges_to_labels([(2, 3)], 5)  # 1-based inclusive
    assert y.tolist() == [0, 1, 1, 0, 0]


def test_natural_sort_and_bad_inputs(tmp_path):
    assert sorted(["10.jpg", "2.jpg", "1.jpg"], key=natural_key) == ["1.jpg", "2.jpg", "10.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="empty folder"):
        FrameFolder(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match=r"000\.jpg: unreadable or corrupt image"):
        list(FrameFolder(bad))
    with pytest.raises(SourceError, match="undecodable video"):
        (tmp_path / "x.avi").write_bytes(b"garbage")
        VideoFile(tmp_path / "x.avi")
    with pytest.raises(SourceError, match="unknown dataset layout"):
        load_dataset(empty)


def test_mixed_frame_sizes_rejected(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    cv2.imwrite(str(d / "0.png"), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(d / "1.png"), np.zeros((11, 12, 3), np.uint8))
    with pytest.raises(SourceError, match=r"1\.png: frame size 12x11 differs"):
        list(open_source(d))


def test_video_file_source(tmp_path):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(7):
        w.write(np.full((24, 32, 3), i * 30, np.uint8))
    w.release()
    v = VideoFile(path)
    frames = list(v)
    assert len(frames) == 7 and frames[0].shape == (24, 32, 3)
    assert abs(int(v.read(3).mean()) - 90) <= 3


def test_cache_memmaps_reuses_and_rebuilds_on_change(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    for i in range(4):
        cv2.imwrite(str(d / f"{i}.png"), np.full((20, 30, 3), 40 * i, np.uint8))
    cache = FrameCache(tmp_path / "c", progress=False)
    a = cache.load(d, 8, 16, 1)
    assert isinstance(a, np.memmap) and a.shape == (4, 8, 16, 1) and a.dtype == np.uint8
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1
    cache.load(d, 8, 16, 1)
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1  # reused
    cv2.imwrite(str(d / "4.png"), np.zeros((20, 30, 3), np.uint8))
    assert cache.load(d, 8, 16, 1).shape[0] == 5  # source changed -> rebuilt


def test_corrupt_frame_leaves_no_cache_entry(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    cv2.imwrite(str(d / "0.png"), np.zeros((20, 30, 3), np.uint8))
    (d / "1.png").write_bytes(b"\x89PNG broken")
    cache = FrameCache(tmp_path / "c", progress=False)
    with pytest.raises(SourceError, match=r"1\.png"):
        cache.load(d, 8, 8, 1)
    assert list((tmp_path / "c").iterdir()) == []


def test_clips_shapes_edges_and_T_checks():
    video = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4, 1)
    clips = TrainClips([video], 3)
    assert len(clips) == 3  # centres 1..3
    item = clips[0]
    assert item["X"].shape == (1, 3, 4, 4) and item["M"].shape == (1, 3, 4, 4)
    test = EvalClips(video, 3)
    assert len(test) == 5
    first = test[0]  # frames (0, 0, 1): clamped
    assert np.allclose(first[0, 0].numpy(), first[0, 1].numpy())
    with pytest.raises(ValueError, match="odd"):
        TrainClips([video], 4)
    with pytest.raises(ValueError, match="shorter than T"):
        TrainClips([video[:2]], 3, names=["short"])


def test_balanced_clips_give_each_video_an_equal_share_that_moves_each_epoch():
    long, short = np.zeros((101, 4, 4, 1), np.uint8), np.zeros((11, 4, 4, 1), np.uint8)
    clips = TrainClips([long, short], 3, balance=True)
    plain = TrainClips([long, short], 3)
    assert len(clips) >= len(plain)  # the epoch keeps its length (rounded up per video)
    per = [sum(1 for vi, _ in clips.index if vi == k) for k in (0, 1)]
    assert per[0] == per[1]
    assert all(1 <= t <= 99 for vi, t in clips.index if vi == 0)
    assert all(1 <= t <= 9 for vi, t in clips.index if vi == 1)
    first = {t for vi, t in clips.index if vi == 0}
    seen = set(first)
    for epoch in (1, 2, 3):
        clips.set_epoch(epoch)
        seen |= {t for vi, t in clips.index if vi == 0}
    assert len(seen) > len(first)  # thinned video: other frames in later epochs


def test_shifted_clips_move_frames_and_mask_together():
    video = np.zeros((12, 16, 16, 1), np.uint8)
    video[:, 6:10, 6:10] = 255
    clips = TrainClips([video], 3, shift=3, seed=5)
    assert torch.equal(clips[0]["X"], clips[0]["X"])  # repeatable: (seed, epoch, clip) only
    moves = set()
    for i in range(len(clips)):
        ys, xs = np.nonzero(clips[i]["X"][0, 1].numpy())
        assert len(ys) == 16  # the square moved whole (it stays inside the frame)
        moves.add((xs.min() - 6, ys.min() - 6))
    assert len(moves) > 1 and all(abs(dx) <= 3 and abs(dy) <= 3 for dx, dy in moves)
    M = torch.zeros(1, 3, 16, 16)
    M[..., 6:10, 6:10] = 1
    out = translate(M, 2, -1, fill=0.0)
    assert out.sum() == 48 and out[0, 0, 5, 8] == 1 and out[0, 0, 9, 8] == 0
    edge = translate(torch.arange(4.0).view(1, 1, 1, 4), 1, 0)
    assert edge.flatten().tolist() == [0.0, 0.0, 1.0, 2.0]  # replicated edge


def _avi(path, n, size=(32, 24)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), i * 30, np.uint8))
    w.release()
    return path


def test_sources_random_access_fps_resolution(tmp_path):
    v = VideoFile(_avi(tmp_path / "clip.avi", 6))
    assert len(v) == 6 and v.fps == 12 and v.resolution == (32, 24)
    got = [int(v.read(i).mean()) for i in (4, 5, 1, 2)]  # sequential, then a backward seek
    assert all(abs(g - e) <= 3 for g, e in zip(got, (120, 150, 30, 60), strict=True))
    assert abs(int(v[-1].mean()) - 150) <= 3 and v.count_frames() == 6
    with pytest.raises(IndexError, match="frame 6 out of range"):
        v.read(6)
    d = tmp_path / "tif"
    d.mkdir()
    for i in range(1, 12):  # 1-based names, unpadded past 9
        cv2.imwrite(str(d / f"{i}.tif"), np.full((10, 14, 3), i * 20, np.uint8))
    (d / "._1.tif").write_bytes(b"macOS resource fork")  # hidden: skipped
    f = open_source(d)
    assert len(f) == 11 and f.fps is None and f.resolution == (14, 10)
    assert [int(x.mean()) for x in (f[0], f[9], f[-1])] == [20, 200, 220]
    assert len(list(f)) == 11


class _LyingVideo(VideoFile):
    """A container whose reported frame count is wrong."""

    def __init__(self, path, n):
        super().__init__(path)
        self._n = n


@pytest.mark.parametrize("reported", [0, 3, 50])
def test_cache_streams_videos_with_wrong_frame_count(tmp_path, monkeypatch, reported):
    path = _avi(tmp_path / "v.avi", 7)
    monkeypatch.setattr("ddlvad.data.cache.open_source", lambda p: _LyingVideo(p, reported))
    arr = FrameCache(tmp_path / "c", progress=False).load(path, 8, 12, 3)
    assert arr.shape == (7, 8, 12, 3) and abs(int(arr[6].mean()) - 180) <= 3
    assert arr.offset % 64 == 0  # the fixed header keeps the data aligned


def test_cache_progress_bar_and_mixed_sizes_leave_no_entry(tmp_path, capsys):
    d = tmp_path / "v"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.png"), np.zeros((20, 30 if i < 2 else 31, 3), np.uint8))
    cache = FrameCache(tmp_path / "c", progress=True)
    with pytest.raises(SourceError, match=r"2\.png: frame size 31x20 differs"):
        cache.load(d, 8, 8, 1)
    assert list((tmp_path / "c").iterdir()) == []
    assert "cache v" in capsys.readouterr().err  # the progress bar ran
    (d / "2.png").unlink()
    assert cache.load(d, 8, 8, 1).shape == (2, 8, 8, 1)


def test_atomic_write_keeps_umask_mode_and_cleans_up(tmp_path):
    import os

    from ddlvad.io import atomic_write, atomic_write_text

    p = atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == 0o666 & ~mask

    def boom(tmp: str) -> None:
        open(tmp, "w").write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "b.txt", boom)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.txt"]
