"""The network over whole videos: frame scores (and error maps) under the scoring protocol.

Each video's windows come from ``protocol.SlidingWindow`` (the edge rule), are batched in
order, reconstructed, and scored by ``protocol.error_map`` and ``protocol.patch_max``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ddlvad.config import Config
from ddlvad.data.clips import EvalClips, to_tensor
from ddlvad.scoring.gain import Gain, apply_gain
from ddlvad.scoring.protocol import SlidingWindow, check_edge, check_patch, error_map, patch_max


@torch.no_grad()
def reconstruct_video(
    model: torch.nn.Module,
    video: np.ndarray,
    T: int,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    patch: int = 16,
    shifted: bool = False,
    keep_maps: bool = False,
    edge: str = "clamp",
    gain: Gain | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw per-frame scores (N,) for one (N, H, W, C) uint8 video; error maps (N, H, W) on
    demand. ``edge`` picks the edge-frame rule (see ``ddlvad.scoring.protocol``); ``gain``
    calibrates the video's brightness first (``ddlvad.scoring.gain``)."""
    check_edge(edge)
    check_patch(patch, video.shape[1], video.shape[2], shifted)
    if gain is not None:
        video = apply_gain(video, gain)
    model.eval()
    windows = SlidingWindow(T, edge).windows(len(video))
    scores, maps = [], []
    for i in range(0, len(windows), batch_size):
        X = torch.stack([to_tensor(video[ids]) for _, ids in windows[i : i + batch_size]])
        X = X.to(device)  # (B, C, T, H, W)
        err = error_map(X[:, :, T // 2], model(X))
        scores.append(patch_max(err, patch, shifted).float().cpu().numpy())
        if keep_maps:
            maps.append(err.float().cpu().numpy())
    s = np.concatenate(scores)
    m = np.concatenate(maps) if keep_maps else None
    r = T // 2
    if edge == "copy" and r > 0:  # each edge frame copies the nearest full-window frame
        s = np.pad(s, (r, r), mode="edge")
        m = None if m is None else np.pad(m, ((r, r), (0, 0), (0, 0)), mode="edge")
    return s, m


@torch.no_grad()
def reconstruct_frames(
    model: torch.nn.Module, video: np.ndarray, T: int, frames: list[int], *, device="cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(X^t, f(X)) for chosen frames of one video: two (K, H, W, C) float arrays in [0, 1].

    Clips follow the clamp rule, so edge frames are reconstructable too."""
    model.eval()
    clips = EvalClips(video, T)
    X = torch.stack([clips[int(t)] for t in frames]).to(device)  # (K, C, T, H, W)
    y = model(X)  # (K, C, H, W)
    x_t = X[:, :, T // 2]
    return (
        x_t.permute(0, 2, 3, 1).float().cpu().numpy(),
        y.permute(0, 2, 3, 1).float().cpu().numpy(),
    )


def score_kwargs(cfg: Config) -> dict[str, Any]:
    """reconstruct_video's protocol keywords from cfg.score."""
    s = cfg.score
    return {"batch_size": s.batch_size, "patch": s.patch, "shifted": s.shifted, "edge": s.edge}


def score_videos(
    model, videos: dict[str, np.ndarray], cfg: Config, device, gain: Gain | None = None
) -> dict[str, np.ndarray]:
    """Raw frame scores per video, under cfg.score (patch, shifted, edge) and ``gain``."""
    kw = score_kwargs(cfg)
    return {
        name: reconstruct_video(model, v, cfg.model_T, device=device, gain=gain, **kw)[0]
        for name, v in videos.items()
    }
