"""Ground-truth readers -> per-video 0/1 frame arrays.

Range files hold 1-based inclusive frame ranges, one list per test video (UCSD / Ped2 style).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ddlvad.data.sources import SourceError


def ranges_to_labels(ranges: list[tuple[int, int]], n_frames: int) -> np.ndarray:
    """1-based inclusive [start, end] ranges -> (n_frames,) uint8."""
    y = np.zeros(n_frames, dtype=np.uint8)
    for start, end in ranges:
        y[max(start - 1, 0) : min(end, n_frames)] = 1
    return y


def read_ucsd_m(path: str | Path) -> list[list[tuple[int, int]]]:
    """``UCSDped2.m``: ``TestVideoFile{end+1}.gt_frame = [61:180];`` (or ``[1:50, 90:120]``)."""
    text = Path(path).read_text(errors="replace")
    out = []
    for m in re.finditer(r"gt_frame\s*=\s*\[([^\]]*)\]", text):
        ranges = []
        for part in re.split(r"[,;]", m.group(1)):
            part = part.strip()
            if not part:
                continue
            if ":" in part:
                a, b = part.split(":")[0], part.split(":")[-1]
                ranges.append((int(a), int(b)))
            else:
                ranges.append((int(part), int(part)))
        out.append(ranges)
    if not out:
        raise SourceError(f"{path}: no 'gt_frame = [a:b];' entries found")
    return out


def read_range_mat(path: str | Path, var: str = "gt") -> list[list[tuple[int, int]]]:
    """MATLAB v5 file whose ``gt`` is a 1xV cell of 2xK [start; end] arrays (1-based)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises several types for bad files
        raise SourceError(f"{path}: not a readable MATLAB v5 file ({e})") from e
    if var not in mat:
        keys = [k for k in mat if not k.startswith("__")]
        raise SourceError(f"{path}: expected variable {var!r}, found {keys}")
    cells = np.asarray(mat[var]).reshape(-1)
    out = []
    for cell in cells:
        a = np.asarray(cell, dtype=np.int64)
        if a.ndim == 1:
            a = a.reshape(2, -1)
        if a.shape[0] != 2 and a.shape[-1] == 2:
            a = a.T
        out.append([(int(s), int(e)) for s, e in zip(a[0], a[1], strict=True)])
    return out


def check_length(labels: np.ndarray, n_frames: int, source: str | Path, video: str) -> None:
    if len(labels) != n_frames:
        raise SourceError(f"{source}: video {video} has {len(labels)} labels but {n_frames} frames")
