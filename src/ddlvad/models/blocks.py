"""ConvBlock: parallel Conv2D branches, then space-to-depth (encode) or depth-to-space (decode)."""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Multi-kernel conv block that halves (encode) or doubles (decode) H and W.

    Encode: branches k in ``kernels`` map c_in -> c_out each ("same" padding), concat,
    BN + ReLU, space-to-depth (x4 channels, H/2, W/2), then a ``final_kernel`` conv to c_out.
    Decode: branches map c_in -> 4*c_out each, depth-to-space (/4 channels, 2H, 2W), then
    the final conv to c_out. ``last=True`` drops the trailing BN + ReLU (output head).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        kernels: tuple[int, ...] = (3, 5, 7),
        final_kernel: int = 1,
        decode: bool = False,
        last: bool = False,
    ) -> None:
        super().__init__()
        n = len(kernels)
        branch = 4 * c_out if decode else c_out
        self.branches = nn.ModuleList(nn.Conv2d(c_in, branch, k, padding=k // 2) for k in kernels)
        self.bn1 = nn.BatchNorm2d(n * branch)
        self.resize = nn.PixelShuffle(2) if decode else nn.PixelUnshuffle(2)
        c_mid = n * c_out if decode else 4 * n * c_out
        self.final = nn.Conv2d(c_mid, c_out, final_kernel, padding=final_kernel // 2)
        self.bn2 = nn.Identity() if last else nn.BatchNorm2d(c_out)
        self.act2 = nn.Identity() if last else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, c_in, H, W)
        x = torch.cat([conv(x) for conv in self.branches], dim=1)  # (B, n*branch, H, W)
        x = torch.relu(self.bn1(x))
        x = self.resize(x)  # encode: (B, 4n*c_out, H/2, W/2); decode: (B, n*c_out, 2H, 2W)
        return self.act2(self.bn2(self.final(x)))
