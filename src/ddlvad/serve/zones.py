"""Ignore zones: polygons per camera where nothing raises an alert (a road, a swaying tree).

The file (JSON, or YAML by its .yaml / .yml suffix) maps a camera name, or ``"*"`` for
every camera, to a list of polygons; each polygon is a list of at least 3 ``[x, y]`` points
given as fractions of the frame's width and height (0..1, so the file does not depend on
the resolution)::

    {"*": [[[0, 0], [1, 0], [1, 0.2], [0, 0.2]]],
     "gate": [[[0.6, 0.5], [0.9, 0.5], [0.9, 1.0], [0.6, 1.0]]]}

The error map is multiplied by the mask (0 inside a zone) before the patch max, so the
zone's pixels count for nothing in the score and are blank on the heatmap.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from ddlvad.io import read_text

Polygon = list[tuple[float, float]]


def _polygon(p, where: str) -> Polygon:
    ok = isinstance(p, list) and len(p) >= 3
    pts = []
    for q in p if ok else []:
        if not (isinstance(q, list | tuple) and len(q) == 2):
            ok = False
            break
        x, y = q
        if not all(isinstance(v, int | float) and 0 <= v <= 1 for v in (x, y)):
            ok = False
            break
        pts.append((float(x), float(y)))
    if not ok:
        raise ValueError(
            f"{where}: expected a polygon: a list of at least 3 [x, y] points, each a "
            f"fraction of the frame's width / height in [0, 1]; got {p!r}"
        )
    return pts


def load_zones(path: str | Path) -> dict[str, list[Polygon]]:
    """{camera name or "*": [polygon, ...]} from a JSON or YAML file; ValueError naming
    the file and what was expected on any other content."""
    path = Path(path)
    text = read_text(path)
    is_yaml = path.suffix in (".yaml", ".yml")
    try:
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (ValueError, yaml.YAMLError) as e:
        kind = "YAML" if is_yaml else "JSON"
        raise ValueError(f"{path}: not valid {kind}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping of camera name (or "*") to polygons')
    out = {}
    for cam, polys in data.items():
        if not isinstance(polys, list):
            raise ValueError(f"{path}: {cam}: expected a list of polygons, got {polys!r}")
        out[str(cam)] = [_polygon(p, f"{path}: {cam}") for p in polys]
    return out


def zones_for(zones: dict[str, list[Polygon]], camera: str) -> list[Polygon]:
    """The polygons that apply to ``camera``: its own and the ``"*"`` ones."""
    return zones.get("*", []) + zones.get(camera, [])


def zone_mask(polygons: list[Polygon], height: int, width: int) -> np.ndarray | None:
    """(height, width) float32: 0 inside any polygon, 1 elsewhere; None without polygons."""
    if not polygons:
        return None
    mask = np.ones((height, width), np.float32)
    for poly in polygons:
        pts = np.array([[x * (width - 1), y * (height - 1)] for x, y in poly])
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 0.0)
    return mask
