"""Bring-your-own detections: MOT-challenge text files and the authors' JSON format.

Either lets any detector (e.g. Faster R-CNN, as in the paper) feed the pseudo-anomaly masks.

- MOT: ``objects.detections`` is a folder with one ``<video>.txt`` per training video (or a
  single .txt for a one-video dataset). Rows: ``frame,id,x,y,w,h,conf,...`` with 1-based
  frames and pixel boxes in the original frame size. ``id`` may be -1 (untracked).
- JSON (authors' ``tracked_bounding_boxes.json``): ``{frame_path: {track_id: {"box":
  [x1, y1, x2, y2]}}}`` with normalised boxes; a frame path is matched to a video by its
  parent folder name and to a frame by its file name.

Both return, per video, a list over frames of ``{id: [x1, y1, x2, y2]}`` (normalised); ids
are negative for detections that carry none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ddlvad.data.layouts import VideoRecord
from ddlvad.data.sources import SourceError, open_source

FrameDets = list[dict[int, list[float]]]


def read_mot(path: str | Path, n_frames: int, frame_size: tuple[int, int]) -> FrameDets:
    """One MOT text file -> per-frame {id: normalised box}; frame_size is (H, W) in pixels."""
    path = Path(path)
    H, W = frame_size
    out: FrameDets = [{} for _ in range(n_frames)]
    for ln, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.replace(" ", "").split(",")
        try:
            f, tid, x, y, w, h = (float(v) for v in parts[:6])
        except ValueError as e:
            raise SourceError(
                f"{path}:{ln}: expected 'frame,id,x,y,w,h,conf,...' numbers, got {line!r}"
            ) from e
        if not 1 <= f <= n_frames:
            raise SourceError(f"{path}:{ln}: frame {int(f)} outside 1..{n_frames}")
        frame = out[int(f) - 1]
        key = int(tid) if tid >= 0 else -(len(frame) + 1)
        box = [x / W, y / H, (x + w) / W, (y + h) / H]
        frame[key] = [float(v) for v in np.clip(box, 0.0, 1.0)]
    return out


def read_authors_json(path: str | Path, records: list[VideoRecord]) -> dict[str, FrameDets]:
    """The authors' tracked_bounding_boxes.json -> per video, per frame {id: box}."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SourceError(f"{path}: not readable JSON ({e})") from e
    index = {}
    for rec in records:
        files = getattr(open_source(rec.path), "files", [])
        index[rec.name] = {f.name: i for i, f in enumerate(files)}
    out = {rec.name: [{} for _ in range(rec.n_frames)] for rec in records}
    for frame_path, objs in doc.items():
        p = Path(frame_path)
        video, frame = p.parent.name, index.get(p.parent.name, {}).get(p.name)
        if frame is None:
            continue  # frames of other splits / videos are ignored
        for tid, obj in objs.items():
            box = obj["box"] if isinstance(obj, dict) else obj
            if len(box) != 4:
                raise SourceError(f"{path}: {frame_path} track {tid}: expected 4 box numbers")
            out[video][frame][int(tid)] = [float(v) for v in box]
    return out


def _frame_size(rec: VideoRecord) -> tuple[int, int]:
    img = open_source(rec.path).read(0)
    return int(img.shape[0]), int(img.shape[1])


def load_detections(
    kind: str, source: str | Path, records: list[VideoRecord]
) -> dict[str, FrameDets]:
    """Detections for every record from a MOT folder/file or an authors' JSON file."""
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source}: detections not found (objects.detections)")
    if kind == "json":
        return read_authors_json(source, records)
    if kind != "mot":
        raise ValueError(f"unknown detections kind {kind!r}; choose mot or json")
    out = {}
    for rec in records:
        f = source if source.is_file() else source / f"{rec.name}.txt"
        if not f.exists():
            raise SourceError(f"{f}: no MOT detections for video {rec.name}")
        out[rec.name] = read_mot(f, rec.n_frames, _frame_size(rec))
    return out


def source_fingerprint(source: str | Path) -> str:
    """Size + mtime of a detections file, or of every file in a detections folder."""
    p = Path(source)
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
