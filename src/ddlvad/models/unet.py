"""UNet (T = 1) and Conv3DSkipUNet (C3DSU). Pure torch: tensor in, tensor out.

Both reconstruct the middle frame X^t of a clip X of shape (B, C, T, H, W) and return
(B, C, H, W) in [0, 1]. H and W must be multiples of 16 (four 2x down-samplings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # x: (N, C, H, W) -> [(N, w1, H/2, W/2), (N, w2, H/4), (N, w3, H/8), (N, w4, H/16)]
        feats = []
        x = to_fast_layout(x, self.blocks[0])
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def forward_pair(self, x: torch.Tensor, s: torch.Tensor, D: torch.Tensor):
        """Features of x and of x + s * D (the pseudo-anomaly pass), the first block's branch
        convolution shared (``ConvBlock.forward_pair``); the fast path only."""
        x, D = to_fast_layout(x, self.blocks[0]), to_fast_layout(D, self.blocks[0])
        a, b = self.blocks[0].forward_pair(x, s, D)
        fa, fb = [a], [b]
        for block in self.blocks[1:]:
            fa.append(block(fa[-1]))
            fb.append(block(fb[-1]))
        return fa, fb


class Decoder(nn.Module):
    def __init__(self, C: int, latent: int, kernels: tuple[int, ...], final_kernel: int) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths(latent)
        kw = dict(kernels=kernels, final_kernel=final_kernel, decode=True)
        self.up4 = ConvBlock(w4, w3, **kw)
        self.up3 = ConvBlock(2 * w3, w2, **kw)
        self.up2 = ConvBlock(2 * w2, w1, **kw)
        # 4*C-channel branches: merged they ran faster at C = 1 (41 vs 51 ms fwd + bwd at
        # the cpu preset's shape, 1 thread), separate at C = 3 (78 vs 111 ms)
        self.up1 = ConvBlock(2 * w1, C, last=True, merge=C == 1, **kw)

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

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        # X: (B, C, 1, H, W) -> (B, C, H, W)
        return self.decoder(*self.encoder(X[:, :, 0]))

    def forward_pair(self, X: torch.Tensor, s: torch.Tensor, D: torch.Tensor):
        """(f(X), f(X + s * D)) for a DDL step, D like X (see ``Encoder.forward_pair``)."""
        fa, fb = self.encoder.forward_pair(X[:, :, 0], s, D[:, :, 0])
        return self.decoder(*fa), self.decoder(*fb)


def skip_head(skips: nn.ModuleList, decoder: Decoder, feats: tuple[torch.Tensor, ...]):
    """C3DSU after its encoder: per-level features (B, c, T, h, w) -> (B, C, H, W). Each
    level's Conv3D skip keeps only the middle time step t = T // 2, then the decoder runs.
    Shared by ``C3DSU.head`` and the stream engine's ``StreamHead`` (features cached per
    frame). The decoder's blocks carry the model's path (``set_fast_path``)."""
    fast = decoder.up4.fast
    s = [skip_middle(conv, f, fast) for f, conv in zip(feats, skips, strict=True)]
    return decoder(*s)  # each skip (B, c, h, w): the middle step only


def skip_middle(conv: nn.Conv3d, f: torch.Tensor, fast: bool) -> torch.Tensor:
    """The single output step of a Conv3D skip whose kernel spans the whole clip (no temporal
    padding): f (B, c, T, h, w) -> (B, c_out, h, w). ``fast``: the same sums as one 2D
    convolution over T*c channels (frame t's channel i at t*c + i), on channels-last
    memory, which oneDNN runs faster than its 3D kernel at these shapes."""
    if not fast:
        return conv(f)[:, :, 0]
    B, c, T, h, w = f.shape
    # (B, h, w, T, c) in memory, viewed as the NCHW-shaped (B, T*c, h, w): channels-last
    x = f.permute(0, 3, 4, 2, 1).reshape(B, h, w, T * c).permute(0, 3, 1, 2)
    weight = conv.weight.transpose(1, 2).reshape(conv.out_channels, T * c, *conv.kernel_size[1:])
    return F.conv2d(x, weight, conv.bias, padding=conv.padding[1:])


def _frames(X: torch.Tensor) -> torch.Tensor:
    """Clips (B, C, T, H, W) -> frames (B*T, C, H, W), for the per-frame 2D encoder."""
    B, C, T, H, W = X.shape
    return X.transpose(1, 2).reshape(B * T, C, H, W)


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

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: (B, C, T, H, W) -> (B, C, H, W)."""
        B, C, T, H, W = X.shape
        return self.head(*self._clips(self.encoder(_frames(X)), B, T))

    def forward_pair(self, X: torch.Tensor, s: torch.Tensor, D: torch.Tensor):
        """(f(X), f(X + s * D)) for a DDL step, D like X (see ``Encoder.forward_pair``)."""
        B, _, T = X.shape[:3]
        fa, fb = self.encoder.forward_pair(_frames(X), s, _frames(D))
        return self.head(*self._clips(fa, B, T)), self.head(*self._clips(fb, B, T))

    @staticmethod
    def _clips(feats: list[torch.Tensor], B: int, T: int) -> list[torch.Tensor]:
        """Per-frame features (B*T, c, h, w) -> per-clip (B, c, T, h, w)."""
        return [f.reshape(B, T, *f.shape[1:]).transpose(1, 2) for f in feats]

    def head(self, *feats: torch.Tensor) -> torch.Tensor:
        """Per-level encoder features (B, c, T, h, w) -> (B, C, H, W): Conv3D skips, then
        the decoder."""
        return skip_head(self.skips, self.decoder, feats)
