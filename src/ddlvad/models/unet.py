"""UNet (T = 1) and Conv3DSkipUNet (C3DSU). Pure torch: tensor in, tensor out.

Both reconstruct the middle frame X^t of a clip X of shape (B, C, T, H, W) and return
(B, C, H, W) in [0, 1]. H and W must be multiples of 16 (four 2x down-samplings).
"""

from __future__ import annotations

import torch
from torch import nn

from ddlvad.models.blocks import ConvBlock, set_fast_path, to_fast_layout


def widths(latent: int) -> tuple[int, int, int, int]:
    """Channel widths of the four levels: latent/8, latent/4, latent/2, latent."""
    if latent % 8:
        raise ValueError(f"latent width must be a multiple of 8, got {latent}")
    return latent // 8, latent // 4, latent // 2, latent


class Encoder(nn.Module):
    def __init__(self, C: int, latent: int, kernels: tuple[int, ...], final_kernel: int) -> None:
        super().__init__()
        w = widths(latent)
        c_ins = (C, *w[:3])
        self.blocks = nn.ModuleList(
            # the first block sees the image's few channels: its branches run merged
            ConvBlock(ci, co, kernels=kernels, final_kernel=final_kernel, merge=i == 0)
            for i, (ci, co) in enumerate(zip(c_ins, w, strict=True))
        )

    def forward(self, x: torch.Tensor, sD=None) -> list[torch.Tensor]:
        # x: (N, C, H, W) -> [(N, w1, H/2, W/2), (N, w2, H/4), (N, w3, H/8), (N, w4, H/16)]
        # sD: (s, D) with x = X0 + s * D (see ConvBlock); only the first block needs it.
        x = to_fast_layout(x, self.blocks[0])
        if sD is not None:
            sD = (sD[0], to_fast_layout(sD[1], self.blocks[0]))
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x, sD) if i == 0 and sD is not None else block(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    def __init__(self, C: int, latent: int, kernels: tuple[int, ...], final_kernel: int) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths(latent)
        kw = dict(kernels=kernels, final_kernel=final_kernel, decode=True)
        self.up4 = ConvBlock(w4, w3, **kw)
        self.up3 = ConvBlock(2 * w3, w2, **kw)
        self.up2 = ConvBlock(2 * w2, w1, **kw)
        self.up1 = ConvBlock(2 * w1, C, last=True, merge=True, **kw)  # 4*C-channel branches

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, s3: torch.Tensor, s4: torch.Tensor):
        x = self.up4(s4)  # (B, w3, H/8, W/8)
        x = self.up3(torch.cat([x, s3], dim=1))  # (B, w2, H/4, W/4)
        x = self.up2(torch.cat([x, s2], dim=1))  # (B, w1, H/2, W/2)
        x = self.up1(torch.cat([x, s1], dim=1))  # (B, C, H, W)
        return torch.sigmoid(x)


class UNet(nn.Module):
    """2D UNet baseline: the single frame of a T = 1 clip, plain skips."""

    def __init__(
        self,
        *,
        C: int = 3,
        T: int = 1,
        latent: int = 64,
        kernels: tuple[int, ...] = (3, 5, 7),
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        if T != 1:
            raise ValueError(f"UNet takes T = 1 clips, got T = {T}; use c3dsu for T > 1")
        self.T = 1
        self.encoder = Encoder(C, latent, kernels, final_kernel)
        self.decoder = Decoder(C, latent, kernels, final_kernel)
        set_fast_path(self, True)  # the default; set_fast_path(model, False) for the reference

    def forward(self, X: torch.Tensor, sD=None) -> torch.Tensor:
        # X: (B, C, 1, H, W) -> (B, C, H, W); sD = (s, D): X = X0 + s * D, D like X
        sD = None if sD is None else (sD[0], sD[1][:, :, 0])
        return self.decoder(*self.encoder(X[:, :, 0], sD))


def skip_head(skips: nn.ModuleList, decoder: Decoder, feats: tuple[torch.Tensor, ...]):
    """C3DSU after its encoder: per-level features (B, c, T, h, w) -> (B, C, H, W). Each
    level's Conv3D skip keeps only the middle time step t = T // 2, then the decoder runs.
    Shared by ``C3DSU.head`` and the stream engine's ``StreamHead`` (features cached per
    frame)."""
    s = [conv(f)[:, :, 0] for f, conv in zip(feats, skips, strict=True)]
    return decoder(*s)  # each skip (B, c, h, w): the middle step only


class C3DSU(nn.Module):
    """Conv3DSkipUNet: per-frame 2D encoder; every skip passes a Conv3D over time and
    only the middle time step t = T // 2 goes on to the decoder."""

    def __init__(
        self,
        *,
        C: int = 3,
        T: int = 3,
        latent: int = 64,
        kernels: tuple[int, ...] = (3, 5, 7),
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        if T < 1 or T % 2 == 0:
            raise ValueError(f"T must be odd and >= 1, got {T}")
        self.T = T
        self.encoder = Encoder(C, latent, kernels, final_kernel)
        self.decoder = Decoder(C, latent, kernels, final_kernel)
        self.skips = nn.ModuleList(
            # No temporal padding: the kernel spans the whole clip, so the single output step
            # is exactly the middle step of a "same"-padded Conv3D, at 1/T of the cost.
            nn.Conv3d(w, w, (T, 3, 3), padding=(0, 1, 1))
            for w in widths(latent)
        )
        set_fast_path(self, True)  # the default; set_fast_path(model, False) for the reference

    def forward(self, X: torch.Tensor, sD=None) -> torch.Tensor:
        """X: (B, C, T, H, W) -> (B, C, H, W). sD = (s, D): X = X0 + s * D with D like X and
        X passed without grad to s; gradients to s then skip the input gradient (ConvBlock)."""
        B, C, T, H, W = X.shape
        x = X.transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W): frames through 2D
        if sD is not None:
            sD = (sD[0], sD[1].transpose(1, 2).reshape(B * T, C, H, W))
        feats = []
        for feat in self.encoder(x, sD):
            _, c, h, w = feat.shape
            feats.append(feat.reshape(B, T, c, h, w).transpose(1, 2))  # (B, c, T, h, w)
        return self.head(*feats)

    def head(self, *feats: torch.Tensor) -> torch.Tensor:
        """Per-level encoder features (B, c, T, h, w) -> (B, C, H, W): Conv3D skips, then
        the decoder."""
        return skip_head(self.skips, self.decoder, feats)
