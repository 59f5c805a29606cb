"""Ground-truth readers -> per-video 0/1 frame arrays (and pixel masks).

Formats:
  - range files, one list of 1-based inclusive [start, end] frame ranges per test video:
    UCSD's ``UCSDped2.m`` script and the ``<name>.mat`` files of the common frames layout
    (``gt``: 1xV cell of 2xK ``[start; end]`` arrays);
  - ``frame_labels_<name>.npy``: one 1-D 0/1 array of all test frames, videos concatenated;
  - ShanghaiTech ``test_frame_mask/<video>.npy`` (N,) and ``test_pixel_mask/<video>.npy``
    (N, H, W);
  - CUHK Avenue ``<n>_label.mat``: ``volLabel``, a 1xN cell of (H, W) per-frame masks;
  - a CSV of ``video,start,end`` rows (1-based inclusive; header row optional).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from ddlvad.data.sources import SourceError

Ranges = list[tuple[int, int]]


def ranges_to_labels(ranges: Ranges, n_frames: int) -> np.ndarray:
    """1-based inclusive [start, end] ranges -> (n_frames,) uint8."""
    y = np.zeros(n_frames, dtype=np.uint8)
    for start, end in ranges:
        y[max(start - 1, 0) : min(end, n_frames)] = 1
    return y


def check_ranges(ranges: Ranges, n_frames: int, source: str | Path, video: str) -> None:
    """SourceError when a range is malformed or reaches past the video's last frame."""
    for start, end in ranges:
        if start < 1 or end < start:
            raise SourceError(
                f"{source}: video {video} has range [{start}, {end}]; expected 1 <= start <= end"
            )
        if end > n_frames:
            raise SourceError(
                f"{source}: video {video} labels reach frame {end} "
                f"but the video has {n_frames} frames"
            )


def read_ucsd_m(path: str | Path) -> list[Ranges]:
    """``UCSDped2.m``: ``TestVideoFile{end+1}.gt_frame = [61:180];`` (or ``[1:50, 90:120]``)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise SourceError(f"{path}: unreadable label file ({e})") from e
    text = re.sub(r"%[^\n]*", "", text)  # MATLAB comments
    out = []
    for m in re.finditer(r"gt_frame\s*=\s*\[([^\]]*)\]", text):
        ranges = []
        for part in re.split(r"[,;\s]+", m.group(1).strip()):
            if not part:
                continue
            try:
                if ":" in part:
                    a, b = part.split(":")[0], part.split(":")[-1]
                    ranges.append((int(a), int(b)))
                else:
                    ranges.append((int(part), int(part)))
            except ValueError as e:
                raise SourceError(f"{path}: cannot parse gt_frame entry {part!r}") from e
        out.append(ranges)
    if not out:
        raise SourceError(f"{path}: no 'gt_frame = [a:b];' entries found")
    return out


def load_mat(path: str | Path) -> dict[str, Any]:
    """A MATLAB v5 file as a dict, or SourceError naming the file."""
    from scipy.io import loadmat

    try:
        return loadmat(str(path))
    except Exception as e:  # scipy raises several types for bad files (and v7.3 HDF5 files)
        raise SourceError(f"{path}: not a readable MATLAB v5 file ({e})") from e


def mat_var(mat: dict[str, Any], var: str, path: str | Path) -> Any:
    if var not in mat:
        keys = [k for k in mat if not k.startswith("__")]
        raise SourceError(f"{path}: expected variable {var!r}, found {keys}")
    return mat[var]


def read_range_mat(path: str | Path, var: str = "gt") -> list[Ranges]:
    """MATLAB v5 file whose ``gt`` is a 1xV cell of 2xK [start; end] arrays (1-based)."""
    cells = np.asarray(mat_var(load_mat(path), var, path)).reshape(-1)
    out = []
    for cell in cells:
        a = np.asarray(cell, dtype=np.int64)
        if a.size == 0:
            out.append([])
            continue
        if a.ndim == 1:
            a = a.reshape(2, -1)
        if a.shape[0] != 2 and a.shape[-1] == 2:
            a = a.T
        if a.shape[0] != 2:
            raise SourceError(f"{path}: {var} cell of shape {a.shape}; expected 2xK [start; end]")
        out.append([(int(s), int(e)) for s, e in zip(a[0], a[1], strict=True)])
    return out


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(str(path), mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # ValueError / OSError / EOFError for bad files
        raise SourceError(f"{path}: not a readable .npy file ({e})") from e


def read_frame_npy(path: str | Path) -> np.ndarray:
    """A 1-D 0/1 frame-label array (a (1, N) or (N, 1) array is flattened) -> uint8."""
    y = load_npy(path)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise SourceError(f"{path}: array of shape {y.shape}; expected a 1-D array of 0/1 labels")
    return (y != 0).astype(np.uint8)


def split_concatenated(y: np.ndarray, counts: list[int], path: str | Path) -> list[np.ndarray]:
    """Cut one array of all test frames' labels into per-video arrays (video order)."""
    if len(y) != sum(counts):
        raise SourceError(
            f"{path}: {len(y)} labels but the {len(counts)} test videos hold {sum(counts)} "
            f"frames; expected one label per test frame, videos concatenated in order"
        )
    return np.split(y, np.cumsum(counts)[:-1])


def read_vollabel(path: str | Path) -> list[np.ndarray]:
    """CUHK Avenue ``<n>_label.mat``: ``volLabel`` 1xN cell -> N (H, W) masks."""
    cells = np.asarray(mat_var(load_mat(path), "volLabel", path)).reshape(-1)
    masks = [np.asarray(c) for c in cells]
    if any(m.ndim != 2 for m in masks):
        raise SourceError(f"{path}: volLabel cells must be 2-D (H, W) masks")
    return masks


def vollabel_labels(path: str | Path) -> np.ndarray:
    """Per-frame 0/1 labels of an Avenue mask file: a frame is anomalous if its mask is."""
    return np.array([int(m.any()) for m in read_vollabel(path)], dtype=np.uint8)


def read_ranges_csv(path: str | Path) -> dict[str, Ranges]:
    """``video,start,end`` rows -> {video: ranges}; a row with empty start/end lists a video
    with no anomaly. A first row whose start and end are both words is a header."""
    out: dict[str, Ranges] = {}
    try:
        with open(path, newline="") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: unreadable CSV ({e})") from e
    for k, (line, row) in enumerate(rows):
        video, start, end = ([c.strip() for c in row] + ["", ""])[:3]
        if k == 0 and not any(c.lstrip("-").isdigit() for c in (start, end)) and start:
            continue  # header: neither start nor end is a number
        try:
            if not video:
                raise ValueError("no video name")
            ranges = out.setdefault(video, [])
            if start or end:
                ranges.append((int(start), int(end)))
        except ValueError as e:
            raise SourceError(
                f"{path}: line {line} {','.join(row)!r}; expected video,start,end "
                f"(1-based frame numbers, start and end both given or both empty)"
            ) from e
    return out


def check_length(labels: np.ndarray, n_frames: int, source: str | Path, video: str) -> None:
    if len(labels) != n_frames:
        raise SourceError(f"{source}: video {video} has {len(labels)} labels but {n_frames} frames")
