"""Procedural surveillance scenes with known anomalies, written in a real dataset layout.

A static textured background with a footpath; normal walkers cross along the path at
ordinary speeds. Test videos add anomalies of three kinds:
  - ``fast``: a walker-shaped object moving several times faster than normal;
  - ``shape``: an unfamiliar large, bright object (a cart) at walking speed;
  - ``offpath``: a walker crossing the grass vertically (wrong direction, off the path).

Output (the common "frames" layout, same as public Ped2 copies):
  <root>/training/frames/NN/000.jpg ...   normal only
  <root>/testing/frames/NN/000.jpg ...
  <root>/testing/masks/NN/000.png ...     exact pixel masks of anomalous objects (0/255)
  <root>/<name>.mat                       ``gt``: 1xV cell of [start; end] (1-based, inclusive)
  <root>/boxes.json                       true boxes of every object, for tracker tests
Deterministic for a given seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.io import savemat

from ddlvad.io import atomic_write_json

ANOMALY_KINDS = ("fast", "shape", "offpath")


@dataclass
class SceneSpec:
    height: int = 96
    width: int = 128
    train_videos: int = 4
    test_videos: int = 3
    frames: int = 80
    walkers: int = 3  # concurrent normal walkers
    speed: tuple[float, float] = (0.8, 1.6)  # px / frame, normal
    anomalies: tuple[str, ...] = ANOMALY_KINDS
    name: str = "synthetic"
    seed: int = 0
    path_band: tuple[float, float] = field(default=(0.45, 0.8))  # footpath rows, fraction of H


@dataclass
class Obj:
    x: float
    y: float
    vx: float
    vy: float
    w: int
    h: int
    shade: int
    anomalous: bool = False
    kind: str = "walker"


def make_background(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    H, W = spec.height, spec.width
    noise = rng.normal(0, 1, (H // 4 + 1, W // 4 + 1)).astype(np.float32)
    tex = cv2.resize(noise, (W, H), interpolation=cv2.INTER_CUBIC)
    bg = 95 + 12 * tex + rng.normal(0, 3, (H, W))
    y0, y1 = (int(f * H) for f in spec.path_band)
    bg[y0:y1] += 55  # the footpath is lighter than the grass
    bg[y0 : y0 + 2] -= 30  # kerb lines
    bg[y1 - 2 : y1] -= 30
    return np.clip(bg, 0, 255).astype(np.uint8)


def spawn_walker(spec: SceneSpec, rng: np.random.Generator, t_enter_x: float | None = None) -> Obj:
    H, W = spec.height, spec.width
    y0, y1 = (f * H for f in spec.path_band)
    h = int(rng.integers(max(6, H // 9), max(8, H // 7)))
    w = max(3, h // 3)
    direction = 1 if rng.random() < 0.5 else -1
    speed = rng.uniform(*spec.speed)
    x = (-w if direction > 0 else W) if t_enter_x is None else t_enter_x
    y = rng.uniform(y0, max(y0 + 1, y1 - h))
    return Obj(x, y, direction * speed, rng.uniform(-0.1, 0.1), w, h, int(rng.integers(20, 60)))


def spawn_anomaly(kind: str, spec: SceneSpec, rng: np.random.Generator) -> Obj:
    H, W = spec.height, spec.width
    y0, y1 = (f * H for f in spec.path_band)
    if kind == "fast":
        o = spawn_walker(spec, rng)
        o.vx = np.sign(o.vx) * rng.uniform(4.5, 6.0)
    elif kind == "shape":
        h, w = int(H * 0.16), int(W * 0.22)
        o = Obj(-w, rng.uniform(y0, y1 - h), rng.uniform(*spec.speed), 0.0, w, h, 235)
    elif kind == "offpath":
        o = spawn_walker(spec, rng)
        o.x, o.y = rng.uniform(0.2 * W, 0.7 * W), -o.h
        o.vx, o.vy = 0.0, rng.uniform(1.2, 1.8)
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose from {ANOMALY_KINDS}")
    o.anomalous, o.kind = True, kind
    return o


def draw(frame: np.ndarray, o: Obj, t: int) -> np.ndarray:
    """Draw an object; return its pixel mask (H, W) bool."""
    mask = np.zeros(frame.shape, np.uint8)
    x, y = int(round(o.x)), int(round(o.y))
    if o.kind == "shape":
        cv2.rectangle(mask, (x, y), (x + o.w, y + o.h), 1, -1)
    else:
        # A walker: head + body ellipse; legs swing with a gait phase.
        cx = x + o.w // 2
        cv2.circle(mask, (cx, y + o.w // 2), max(1, o.w // 2), 1, -1)
        cv2.ellipse(
            mask, (cx, y + o.h // 2), (max(1, o.w // 2), max(1, o.h // 3)), 0, 0, 360, 1, -1
        )
        swing = int(round((o.w // 2) * np.sin(0.6 * t)))
        cv2.line(mask, (cx, y + 2 * o.h // 3), (cx + swing, y + o.h), 1, 1)
        cv2.line(mask, (cx, y + 2 * o.h // 3), (cx - swing, y + o.h), 1, 1)
    m = mask.astype(bool)
    frame[m] = o.shade
    return m


def box_of(mask: np.ndarray) -> list[float] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    H, W = mask.shape
    return [xs.min() / W, ys.min() / H, (xs.max() + 1) / W, (ys.max() + 1) / H]


def render_video(
    spec: SceneSpec, bg: np.ndarray, rng: np.random.Generator, anomaly: str | None
) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], list]:
    """-> frames (gray uint8), labels (N,), masks (bool), boxes per frame [(id, anomalous, box)]."""
    H, W = spec.height, spec.width
    objs = {i: spawn_walker(spec, rng, rng.uniform(0, W)) for i in range(spec.walkers)}
    next_id = spec.walkers
    start = int(spec.frames * rng.uniform(0.25, 0.45)) if anomaly else -1
    frames, labels, masks, boxes = [], np.zeros(spec.frames, np.uint8), [], []
    for t in range(spec.frames):
        if t == start:
            objs[next_id], next_id = spawn_anomaly(anomaly, spec, rng), next_id + 1
        f = bg.copy()
        amask = np.zeros((H, W), bool)
        fboxes = []
        for oid, o in list(objs.items()):
            m = draw(f, o, t)
            b = box_of(m)
            if b is not None:
                fboxes.append((oid, o.anomalous, b))
            if o.anomalous:
                amask |= m
            o.x += o.vx
            o.y += o.vy
            if o.x > W + 2 or o.x < -o.w - 2 or o.y > H + 2:
                del objs[oid]
                if not o.anomalous:
                    objs[next_id], next_id = spawn_walker(spec, rng), next_id + 1
        f = np.clip(f.astype(np.int16) + rng.normal(0, 2, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
        labels[t] = amask.any()
        masks.append(amask)
        boxes.append(fboxes)
    return frames, labels, masks, boxes


def _write_frames(folder: Path, frames: list[np.ndarray], ext: str = ".jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        if not cv2.imwrite(str(folder / f"{i:03d}{ext}"), f):
            raise OSError(f"{folder}: cannot write frame {i}")


def label_ranges(labels: np.ndarray) -> np.ndarray:
    """0/1 per frame -> 2xK array of 1-based inclusive [start; end] ranges."""
    d = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    starts, ends = np.nonzero(d == 1)[0] + 1, np.nonzero(d == -1)[0]
    return np.stack([starts, ends]).astype(np.float64)


def generate(root: str | Path, spec: SceneSpec | None = None) -> Path:
    """Write a synthetic dataset under ``root``; returns ``root``."""
    spec = spec or SceneSpec()
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    bg = make_background(spec, rng)
    all_boxes: dict[str, dict] = {"training": {}, "testing": {}}
    for i in range(spec.train_videos):
        frames, _, _, boxes = render_video(spec, bg, rng, None)
        name = f"{i + 1:02d}"
        _write_frames(root / "training" / "frames" / name, frames)
        all_boxes["training"][name] = boxes
    cells = np.empty((1, spec.test_videos), dtype=object)
    for i in range(spec.test_videos):
        kind = spec.anomalies[i % len(spec.anomalies)] if spec.anomalies else None
        frames, labels, masks, boxes = render_video(spec, bg, rng, kind)
        name = f"{i + 1:02d}"
        _write_frames(root / "testing" / "frames" / name, frames)
        _write_frames(
            root / "testing" / "masks" / name, [m.astype(np.uint8) * 255 for m in masks], ".png"
        )
        cells[0, i] = label_ranges(labels)
        all_boxes["testing"][name] = boxes
    savemat(str(root / f"{spec.name}.mat"), {"gt": cells})
    atomic_write_json(root / "boxes.json", all_boxes)
    return root


def read_true_boxes(root: str | Path, split: str = "training") -> dict[str, list]:
    return json.loads((Path(root) / "boxes.json").read_text())[split]


def generate_multiscene(
    root: str | Path, scenes: tuple[str, ...] = ("camA", "camB"), spec: SceneSpec | None = None
) -> Path:
    """Several cameras in the ``folder`` layout: ``train/<cam>_<NN>/``, ``test/<cam>_<NN>/``
    and ``labels.csv`` (``video,start,end``, 1-based inclusive). Each camera has its own
    background (seed + camera index)."""
    spec = spec or SceneSpec()
    root = Path(root)
    rows = ["video,start,end"]
    for ci, cam in enumerate(scenes):
        s = SceneSpec(**{**spec.__dict__, "seed": spec.seed + 1000 * ci})
        rng = np.random.default_rng(s.seed)
        bg = make_background(s, rng)
        for i in range(s.train_videos):
            frames = render_video(s, bg, rng, None)[0]
            _write_frames(root / "train" / f"{cam}_{i + 1:02d}", frames)
        for i in range(s.test_videos):
            kind = s.anomalies[i % len(s.anomalies)] if s.anomalies else None
            frames, labels, _, _ = render_video(s, bg, rng, kind)
            name = f"{cam}_{i + 1:02d}"
            _write_frames(root / "test" / name, frames)
            ranges = label_ranges(labels).astype(int).T
            rows += [f"{name},{a},{b}" for a, b in ranges] or [f"{name},,"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
