"""The stream engine's two halves of C3DSU: a per-frame encoder and a per-window head.

C3DSU encodes every frame of a clip alone (a 2D encoder), so on a stream each frame can be
encoded once and its features reused in the T windows that contain it; the head then runs
each level's Conv3D skip at the middle time step only, and the decoder. ``stream_modules``
gives both halves for a model that has them (C3DSU with T > 1), None otherwise (the UNet
baseline sees T = 1: each frame is its own window, nothing to reuse). Pure torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ddlvad.models.unet import C3DSU, skip_head


class StreamEncoder(nn.Module):
    """C3DSU's 2D encoder on single frames: (N, C, H, W) -> four feature maps."""

    def __init__(self, model: C3DSU) -> None:
        super().__init__()
        self.encoder = model.encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(x))


class StreamHead(nn.Module):
    """C3DSU after the encoder, for one window of cached features per clip."""

    def __init__(self, model: C3DSU) -> None:
        super().__init__()
        self.skips, self.decoder = model.skips, model.decoder

    def forward(self, *feats: torch.Tensor) -> torch.Tensor:
        # feats: per level (B, c, T, h, w) -> (B, C, H, W)
        return skip_head(self.skips, self.decoder, feats)


def stream_modules(model: nn.Module) -> tuple[StreamEncoder, StreamHead] | None:
    """(encoder, head) of ``model`` in eval mode, or None when it has no stream engine.

    Built in eval mode: they share the model's layers, and a wrapper left in training mode
    would switch them to training (the ONNX exporter restores each module's mode)."""
    if not isinstance(model, C3DSU) or model.T == 1:
        return None
    return StreamEncoder(model).eval(), StreamHead(model).eval()
