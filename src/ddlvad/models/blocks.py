"""ConvBlock: parallel Conv2D branches, then space-to-depth (encode) or depth-to-space (decode).

Two computations of the same maths live here. The reference path runs each branch as its
own convolution, then concat, BN + ReLU, pixel (un)shuffle and the final convolution, as the
authors' code does. The fast path (``fast = True``, the default) gives the same outputs and
gradients to float rounding, with fewer, better-shaped kernels on a CPU:
- ``merge``: the branches run as one convolution whose smaller kernels are zero-embedded in
  the largest one (built from the branch weights at every call, so gradients reach only the
  real taps). Worth it only where channels are few: the blocks that touch the image.
- encode: space-to-depth followed by a 1x1 convolution is one stride-2 2x2 convolution
  with the same weights viewed as (c_out, c, 2, 2), which skips the unshuffle copy.
- activations and 2D weights are kept channels-last (NHWC) in memory: with 1 to 32 channels,
  oneDNN's NHWC kernels beat its channel-blocked ones (which pad channels to 8 or 16).
- ``sD``: the first layer's input X = X0 + s * D is affine in a scalar s (the pseudo-anomaly
  weight, eqs 1-2). The branch convolution is linear, so d(branches)/ds = conv(D) without
  bias: the gradient to s needs a forward convolution of D instead of the gradient with
  respect to the whole input, which is the costliest kernel of a training step at 1 channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """Multi-kernel conv block that halves (encode) or doubles (decode) H and W.

    Encode: branches k in ``kernels`` map c_in -> c_out each ("same" padding), concat,
    BN + ReLU, space-to-depth (x4 channels, H/2, W/2), then a ``final_kernel`` conv to c_out.
    Decode: branches map c_in -> 4*c_out each, depth-to-space (/4 channels, 2H, 2W), then
    the final conv to c_out. ``last=True`` drops the trailing BN + ReLU (output head).
    ``merge=True`` runs the branches as one convolution on the fast path.
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
        merge: bool = False,
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
        self.decode, self.merge, self.fast = decode, merge, True

    def forward(
        self, x: torch.Tensor, sD: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """x: (B, c_in, H, W) -> (B, c_out, H/2, W/2) encode, (B, c_out, 2H, 2W) decode.

        sD = (s, D): x is X0 + s * D with s a 0-dim tensor that carries grad; x itself must
        not carry grad to s (pass its value detached). The output and every gradient equal
        those of the block on the attached input.
        """
        if not self.fast:
            if sD is not None:
                raise ValueError("sD needs the fast path (block.fast = True)")
            return self._forward_reference(x)
        z = self._mix(x)  # (B, n*branch, H, W)
        if sD is not None:
            s, D = sD
            # value + 0: bit-identical to the plain output; gradient to s through conv(D)
            z = z + (s - s.detach()) * self._mix(D, linear=True)
        z = torch.relu_(self.bn1(z))
        return self.act2(self.bn2(self._resize_final(z)))

    def _forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([conv(x) for conv in self.branches], dim=1)  # (B, n*branch, H, W)
        x = torch.relu(self.bn1(x))
        x = self.resize(x)  # encode: (B, 4n*c_out, H/2, W/2); decode: (B, n*c_out, 2H, 2W)
        return self.act2(self.bn2(self.final(x)))

    def _mix(self, x: torch.Tensor, linear: bool = False) -> torch.Tensor:
        """The concatenated branch outputs (B, n*branch, H, W). ``linear``: without bias and
        with detached weights (the tangent conv(D) of the sD rule)."""
        if self.merge:
            k = max(c.kernel_size[0] for c in self.branches)
            w = torch.cat(
                [F.pad(c.weight, [(k - c.kernel_size[0]) // 2] * 4) for c in self.branches]
            )
            b = None if linear else torch.cat([c.bias for c in self.branches])
            return F.conv2d(x, w.detach() if linear else w, b, padding=k // 2)
        outs = [
            F.conv2d(
                x,
                c.weight.detach() if linear else c.weight,
                None if linear else c.bias,
                padding=c.padding,
            )
            for c in self.branches
        ]
        return torch.cat(outs, dim=1)

    def _resize_final(self, z: torch.Tensor) -> torch.Tensor:
        f = self.final
        if self.decode or f.kernel_size != (1, 1):
            return f(self.resize(z))
        c_out, c4 = f.weight.shape[:2]  # unshuffle channel c*4 + 2i + j == tap (c, i, j)
        return F.conv2d(z, f.weight.view(c_out, c4 // 4, 2, 2), f.bias, stride=2)


def set_fast_path(model: nn.Module, on: bool) -> nn.Module:
    """Switch every ConvBlock of ``model`` to the fast (default) or the reference path; the
    fast path keeps 2D weights (and, through ``to_fast_layout``, activations) channels-last."""
    fmt = torch.channels_last if on else torch.contiguous_format
    for m in model.modules():
        if isinstance(m, ConvBlock):
            m.fast = on
        elif isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=fmt)
    return model


def to_fast_layout(x: torch.Tensor, block: ConvBlock) -> torch.Tensor:
    """(N, C, H, W) in channels-last (NHWC) memory when ``block`` runs the fast path: oneDNN's
    NHWC kernels handle few channels far better than its blocked NCHW ones (same values)."""
    return x.contiguous(memory_format=torch.channels_last) if block.fast else x
