"""``ddlvad tracks``: proposals + tracking over the training split, a summary, overlays."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from ddlvad.config import Config
from ddlvad.data.loading import load_videos, open_dataset
from ddlvad.io import atomic_write
from ddlvad.objects.masks import MaskPicker
from ddlvad.objects.store import track_stats, train_tracks


def draw_tracks(frame: np.ndarray, boxes: dict[int, list[float]]) -> np.ndarray:
    """(H, W, C) uint8 frame + {tid: normalised box} -> BGR overlay, upscaled for reading."""
    img = frame if frame.shape[-1] == 3 else np.repeat(frame, 3, axis=-1)
    img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    scale = max(1, 512 // img.shape[0])
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    H, W = img.shape[:2]
    for tid, (x1, y1, x2, y2) in boxes.items():
        color = tuple(int(c) for c in np.random.default_rng(tid).integers(64, 256, 3))
        p1, p2 = (int(x1 * W), int(y1 * H)), (int(x2 * W), int(y2 * H))
        cv2.rectangle(img, p1, p2, color, 1)
        cv2.putText(
            img,
            str(tid),
            (p1[0], max(p1[1] - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            color,
            1,
            cv2.LINE_AA,
        )
    return img


def run_tracks(cfg: Config, out: Path, *, viz: int = 0, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is a file; expected a folder for --out")
    ds = open_dataset(cfg)
    videos = load_videos(ds.train, cfg, progress)
    tracks, meta, path = train_tracks(ds.train, videos, cfg, progress)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "tracks.json", lambda tmp: shutil.copyfile(path, tmp))
    T = cfg.model_T
    picker = MaskPicker(tracks, cfg.pseudo.no_track, cfg.pseudo.margin)
    summary = {
        "tracks_json": str(out / "tracks.json"),
        "tracker": cfg.objects.tracker,
        "videos": len(videos),
        "frames": meta["frames"],
        "boxes_per_frame": round(meta["boxes_per_frame"], 3),
        **track_stats(tracks),
        "full_track_clip_share": round(
            picker.coverage({k: len(v) for k, v in videos.items()}, T), 4
        ),
        "build_seconds": meta["seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    if viz:
        rng = np.random.default_rng(0)
        names = list(videos)
        for _ in range(viz):
            name = names[int(rng.integers(len(names)))]
            f = int(rng.integers(len(videos[name])))
            img = draw_tracks(np.asarray(videos[name][f]), tracks[name].get(f, {}))
            cv2.imwrite(str(out / f"tracks_{name}_{f:04d}.png"), img)
        summary["viz"] = str(out)
    return summary
