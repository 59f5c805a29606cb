import numpy as np
import pytest

from ddlvad.config import ObjectsConfig
from ddlvad.data.cache import FrameCache
from ddlvad.data.synthetic import SceneSpec, generate, read_true_boxes
from ddlvad.objects.evaluation import id_switches, proposal_recall
from ddlvad.objects.masks import MaskPicker
from ddlvad.objects.proposals import propose_bgsub
from ddlvad.objects.store import build_tracks, read_tracks
from ddlvad.objects.tracking import iou_matrix, track

SPEC = SceneSpec(height=96, width=128, train_videos=2, test_videos=1, frames=60, seed=11)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("scene"), SPEC)
    cache = FrameCache(root / ".cache", progress=False)
    videos = {
        n: np.asarray(cache.load(root / "training/frames" / n, 96, 128, 1)) for n in ("01", "02")
    }
    return root, videos, read_true_boxes(root, "training")


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], float)
    assert np.allclose(iou_matrix(a, b), [[1 / 7, 1.0, 0.0]])


def test_bgsub_recall_at_iou_half(scene):
    _, videos, true = scene
    recalls = [proposal_recall(true[n], propose_bgsub(v)) for n, v in videos.items()]
    assert min(recalls) >= 0.9, recalls


def _track_all(videos, true, method):
    tracks, switches = {}, 0
    for n, v in videos.items():
        kw = {"frame_size": (96, 128)} if method == "ocsort" else {}
        tracks[n] = track(propose_bgsub(v), method, **kw)
        s = id_switches(true[n], tracks[n])
        assert s["matches"] > 0.8 * sum(len(o) for o in true[n])
        switches += s["switches"]
    return tracks, switches


def test_ocsort_id_switches_and_full_track_share(scene):
    _, videos, true = scene
    tracks, switches = _track_all(videos, true, "ocsort")
    # Measured: 1 switch over 336 matched boxes (walkers cross on the path).
    assert switches <= 3, switches
    share = MaskPicker(tracks).coverage({n: len(v) for n, v in videos.items()}, 3)
    assert share >= 0.9
    # The greedy IoU first cut has no motion model: small fast walkers lose their id.
    _, iou_switches = _track_all(videos, true, "iou")
    assert iou_switches > switches


def test_tracks_json_cached_by_key(scene, tmp_path):
    _, videos, _ = scene
    cfg = ObjectsConfig(tracker="iou")
    tr, meta, path = build_tracks(videos, cfg, tmp_path, progress=False)
    assert path.exists() and meta["frames"] == 120
    again, meta2, path2 = build_tracks(videos, cfg, tmp_path, progress=False)
    assert path2 == path and meta2["seconds"] == meta["seconds"]  # reused, not rebuilt
    assert again == tr == read_tracks(path)[0]
    _, _, path3 = build_tracks(
        videos, ObjectsConfig(tracker="iou", diff_threshold=30), tmp_path, progress=False
    )
    assert path3 != path


def test_mask_picker_policies():
    tracks = {
        "v": {
            0: {1: [0, 0, 0.5, 0.5]},
            1: {1: [0, 0, 0.5, 0.5]},
            2: {1: [0, 0, 0.5, 0.5]},
            3: {2: [0.5, 0.5, 1, 1]},
        }
    }
    rng = np.random.default_rng(0)
    boxes, kind = MaskPicker(tracks).pick("v", 1, 3, rng)
    assert kind == 1 and len(boxes) == 3
    assert MaskPicker(tracks, "skip").pick("v", 2, 3, rng) == (None, 0)
    boxes, kind = MaskPicker(tracks, "random").pick("v", 2, 3, rng)
    assert kind == 2 and len(boxes) == 3
    assert MaskPicker(tracks).coverage({"v": 4}, 3) == 0.5
    with pytest.raises(ValueError, match="policy"):
        MaskPicker(tracks, "always")


def test_mask_margin_grows_boxes_within_the_frame():
    tracks = {"v": {k: {1: [0.1, 0.5, 0.3, 0.9]} for k in range(3)}}
    rng = np.random.default_rng(0)
    plain, _ = MaskPicker(tracks).pick("v", 1, 3, rng)
    grown, kind = MaskPicker(tracks, margin=0.5).pick("v", 1, 3, rng)
    assert kind == 1 and plain[0] == [0.1, 0.5, 0.3, 0.9]
    # width 0.2 and height 0.4 grow by 0.1 and 0.2 per side; the bottom stops at the frame
    np.testing.assert_allclose(grown[0], [0.0, 0.3, 0.4, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="margin"):
        MaskPicker(tracks, margin=-0.1)


def _write_mot(path, true_frames, H, W):
    lines = []
    for f, objs in enumerate(true_frames):
        for oid, _, (x1, y1, x2, y2) in objs:
            x, y, w, h = x1 * W, y1 * H, (x2 - x1) * W, (y2 - y1) * H
            lines.append(f"{f + 1},{oid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},0.9,-1,-1,-1")
    path.write_text("\n".join(lines) + "\n")


def test_mot_detections_feed_tracks_with_given_and_ocsort(scene, tmp_path):
    from ddlvad.objects.store import train_tracks
    from tests.conftest import tiny_config

    root, _, true = scene
    mot = tmp_path / "mot"
    mot.mkdir()
    for n in ("01", "02"):
        _write_mot(mot / f"{n}.txt", true[n], SPEC.height, SPEC.width)
    cfg = tiny_config(root, tmp_path / "cache")
    cfg.objects.proposer, cfg.objects.detections, cfg.objects.tracker = "mot", str(mot), "given"
    from ddlvad.data.layouts import load_dataset
    from ddlvad.data.loading import load_videos

    recs = load_dataset(root).train
    videos = load_videos(recs, cfg, progress=False)
    tracks, meta, _ = train_tracks(recs, videos, cfg, progress=False)
    assert id_switches(true["01"], tracks["01"])["switches"] == 0  # ids come from the file
    assert meta["boxes_per_frame"] == pytest.approx(
        sum(len(o) for n in true for o in true[n]) / 120
    )
    cfg.objects.tracker = "ocsort"
    tracks2, _, _ = train_tracks(recs, videos, cfg, progress=False)
    assert id_switches(true["01"], tracks2["01"])["switches"] <= 2


def test_authors_json_and_bad_mot(scene, tmp_path):
    import json

    from ddlvad.data.layouts import load_dataset
    from ddlvad.data.sources import SourceError
    from ddlvad.objects.detections import read_authors_json, read_mot

    root, _, _ = scene
    recs = load_dataset(root).train
    doc = {str(root / "training/frames/01/004.jpg"): {"7": {"box": [0.1, 0.2, 0.3, 0.4]}}}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    dets = read_authors_json(tmp_path / "t.json", recs)
    assert dets["01"][4] == {7: [0.1, 0.2, 0.3, 0.4]} and dets["02"][4] == {}
    (tmp_path / "bad.txt").write_text("1,1,a,b,c,d\n")
    with pytest.raises(SourceError, match=r"bad\.txt:1: expected 'frame,id,x,y,w,h"):
        read_mot(tmp_path / "bad.txt", 10, (96, 128))
    (tmp_path / "far.txt").write_text("99,1,1,1,5,5,1\n")
    with pytest.raises(SourceError, match="frame 99 outside 1..10"):
        read_mot(tmp_path / "far.txt", 10, (96, 128))


def test_proposals_at_a_larger_scale(scene, tmp_path):
    """objects.scale runs bgsub + tracking on frames k times the working size (read from the
    frame cache at that size) and keeps its own tracks cache; normalised boxes match the true
    objects better than proposals on the small frames."""
    from ddlvad.data.layouts import load_dataset
    from ddlvad.data.loading import load_videos
    from ddlvad.objects.store import train_tracks
    from tests.conftest import tiny_config

    root, _, true = scene
    recs = load_dataset(root).train
    recall, paths = {}, {}
    for k in (1, 3):
        cfg = tiny_config(root, tmp_path / "cache")
        cfg.objects.scale = k
        videos = load_videos(recs, cfg, progress=False)  # the working size, 32x32
        tracks, _, paths[k] = train_tracks(recs, videos, cfg, progress=False)
        boxes = [
            np.asarray(list(tracks["01"].get(f, {}).values()), float).reshape(-1, 4)
            for f in range(len(true["01"]))
        ]
        recall[k] = proposal_recall(true["01"], boxes)
    assert paths[1] != paths[3]  # one cache per scale
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4  # 2 videos at 32x32 and 96x96
    assert recall[3] > recall[1] + 0.1, recall
