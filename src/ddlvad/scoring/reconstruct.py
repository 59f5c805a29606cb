"""A torch model over whole videos, through the scoring engine; reconstructions of frames.

``reconstruct_video`` scores one video with a plain torch model (fp32) under a protocol given
by keywords; ``reconstruct_frames`` gives (X^t, f(X)) of chosen frames for the report's
panels.
"""

from __future__ import annotations

import numpy as np
import torch

from ddlvad.data.clips import EvalClips
from ddlvad.scoring.backends import TorchForward
from ddlvad.scoring.engine import ScoreEngine
from ddlvad.scoring.gain import Gain
from ddlvad.scoring.protocol import ScoreProtocol


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
    demand. ``edge`` picks the edge-frame rule (``ddlvad.scoring.window``); ``gain``
    calibrates the video's brightness first (``ddlvad.scoring.gain``)."""
    protocol = ScoreProtocol(
        patch=patch, shifted=shifted, edge=edge, gain=gain.window if gain else 0
    )
    forward = TorchForward(model, "fp32", device)
    engine = ScoreEngine(protocol, forward, T, batch_size=batch_size, gain=gain)
    return engine.score_video(video, keep_maps)


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
