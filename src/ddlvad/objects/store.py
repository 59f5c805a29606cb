"""tracks.json: build (proposals + tracking) once per input key, read and write atomically."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ddlvad.config import Config, ObjectsConfig
from ddlvad.data.cache import CacheWarning
from ddlvad.data.layouts import VideoRecord
from ddlvad.data.loading import fingerprints, frame_cache, load_videos
from ddlvad.io import atomic_write_json
from ddlvad.objects.detections import FrameDets, load_detections, source_fingerprint
from ddlvad.objects.masks import Tracks
from ddlvad.objects.proposals import BgSubParams, propose_bgsub
from ddlvad.objects.tracking import track

FORMAT = "ddlvad-tracks/1"


def tracks_key(
    cfg: ObjectsConfig, videos: dict[str, np.ndarray], fingerprints: dict[str, str]
) -> str:
    raw = json.dumps(
        {
            "cfg": asdict(cfg),
            "videos": {k: [list(v.shape), fingerprints.get(k, "")] for k, v in videos.items()},
            "extra": {k: v for k, v in fingerprints.items() if k not in videos},
        },
        sort_keys=True,
    )
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def write_tracks(path: str | Path, tracks: Tracks, meta: dict) -> None:
    doc = {
        "format": FORMAT,
        "meta": meta,
        "videos": {
            v: {str(f): {str(t): b for t, b in fr.items()} for f, fr in frames.items()}
            for v, frames in tracks.items()
        },
    }
    atomic_write_json(path, doc)


def read_tracks(path: str | Path) -> tuple[Tracks, dict]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable tracks.json ({e})") from e
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: expected format {FORMAT!r}, got {doc.get('format')!r}")
    tracks = {
        v: {int(f): {int(t): b for t, b in fr.items()} for f, fr in frames.items()}
        for v, frames in doc["videos"].items()
    }
    return tracks, doc.get("meta", {})


def _read_cached(path: Path) -> tuple[Tracks, dict] | None:
    """A cached tracks file, or None when there is none or it is damaged (a truncated or
    foreign file is rebuilt with a CacheWarning naming it, as frame cache entries are)."""
    if not path.exists():
        return None
    try:
        return read_tracks(path)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        warnings.warn(f"{path}: damaged tracks cache entry ({e}); rebuilding it", CacheWarning, 3)
        return None


def propose(frames: np.ndarray, cfg: ObjectsConfig) -> list[np.ndarray]:
    """Background-subtraction proposals for one (N, H, W, C) video."""
    p = BgSubParams(diff_threshold=cfg.diff_threshold, min_area=cfg.min_area, max_area=cfg.max_area)
    return propose_bgsub(frames, p)


def track_video(
    frames: np.ndarray, cfg: ObjectsConfig, dets: FrameDets | None
) -> tuple[dict[int, dict[int, list]], int]:
    """One video -> (tracks, number of boxes). ``dets`` replaces the bgsub proposals; with
    ``tracker == "given"`` their own ids are kept (negative ids dropped)."""
    if cfg.tracker == "given":
        if dets is None:
            raise ValueError("objects.tracker=given needs objects.proposer=mot or json")
        tracks = {f: {t: b for t, b in fr.items() if t >= 0} for f, fr in enumerate(dets)}
        return tracks, sum(len(fr) for fr in dets)
    if dets is not None:
        boxes = [np.asarray(list(fr.values()), dtype=np.float64).reshape(-1, 4) for fr in dets]
    else:
        boxes = propose(frames, cfg)
    kw: dict = {"iou_threshold": cfg.iou_threshold}
    if cfg.tracker == "ocsort":
        kw["frame_size"] = frames.shape[1:3]
    return track(boxes, cfg.tracker, **kw), sum(len(b) for b in boxes)


def build_tracks(
    videos: dict[str, np.ndarray],
    cfg: ObjectsConfig,
    folder: str | Path,
    fingerprints: dict[str, str] | None = None,
    *,
    detections: dict[str, FrameDets] | None = None,
    progress: bool = True,
) -> tuple[Tracks, dict, Path]:
    """Reuse ``folder/tracks-<key>.json`` when it exists, else run proposals + tracking.

    The key hashes the objects config and the cached inputs, so any change rebuilds.
    """
    key = tracks_key(cfg, videos, fingerprints or {})
    path = Path(folder) / f"tracks-{key}.json"
    cached = _read_cached(path)
    if cached is not None and cached[1].get("key") == key:
        return *cached, path
    t0 = time.perf_counter()
    tracks: Tracks = {}
    n_boxes = n_frames = 0
    for name, frames in tqdm(videos.items(), desc="tracks", disable=not progress):
        dets = detections.get(name) if detections is not None else None
        tracks[name], n = track_video(frames, cfg, dets)
        n_boxes += n
        n_frames += len(frames)
    meta = {
        "key": key,
        "objects": asdict(cfg),
        "frames": n_frames,
        "boxes_per_frame": n_boxes / max(n_frames, 1),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_tracks(path, tracks, meta)
    return tracks, meta, path


def track_stats(tracks: Tracks) -> dict[str, float]:
    """Number of tracks and their mean length (frames)."""
    lengths = []
    for frames in tracks.values():
        count: dict[int, int] = {}
        for fr in frames.values():
            for tid in fr:
                count[tid] = count.get(tid, 0) + 1
        lengths += list(count.values())
    return {"tracks": len(lengths), "mean_length": float(np.mean(lengths)) if lengths else 0.0}


def train_tracks(
    records: list[VideoRecord], videos: dict[str, np.ndarray], cfg: Config, progress: bool = True
) -> tuple[Tracks, dict, Path]:
    """Tracks over the training videos, cached beside the frames and rebuilt on any change.

    With ``objects.scale`` > 1 the background-subtraction proposals and the tracker see the
    frames at that multiple of the working size (gray, from the frame cache), so that small
    and distant objects keep enough pixels; boxes are normalised, so they apply unchanged at
    the working size."""
    folder = frame_cache(cfg, False).dir / "tracks"
    dets = None
    if cfg.objects.proposer != "bgsub":
        dets = load_detections(cfg.objects.proposer, cfg.objects.detections, records)
    elif cfg.objects.scale != 1:
        cfg = proposal_config(cfg)
        videos = load_videos(records, cfg, progress)
    fps = fingerprints(records, cfg)
    if dets is not None:
        fps["__detections__"] = source_fingerprint(cfg.objects.detections)
    return build_tracks(videos, cfg.objects, folder, fps, detections=dets, progress=progress)


def proposal_config(cfg: Config) -> Config:
    """``cfg`` with the frame size multiplied by ``objects.scale`` and one (gray) channel."""
    out = copy.deepcopy(cfg)
    k = cfg.objects.scale
    out.data.height, out.data.width, out.data.channels = k * cfg.data.height, k * cfg.data.width, 1
    return out
