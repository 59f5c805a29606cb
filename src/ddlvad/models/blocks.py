"""ConvBlock: parallel Conv2D branches, then space-to-depth (encode) or depth-to-space (decode).

Two computations of the same maths live here. The reference path runs each branch as its
own convolution, then concat, BN + ReLU, pixel (un)shuffle and the final convolution, as the
authors' code does. The fast path (``fast = True``, the default) gives the same outputs and
gradients to float rounding, with fewer, better-shaped kernels on a CPU:
- ``merge``: the branches run as one convolution whose smaller kernels are zero-embedded in
  the largest one (built from the branch weights at every call, so gradients reach only the
  real taps). Worth it only where channels are fewest: the first encoder block, and the
  last decoder block at C = 1 (measured; at C = 3 its 12-channel branches run faster apart).
- encode: space-to-depth followed by a 1x1 convolution is one stride-2 2x2 convolution
  with the same weights viewed as (c_out, c, 2, 2), which skips the unshuffle copy; decode:
  depth-to-space followed by a 1x1 convolution is the 1x1 on each sub-pixel first (weight
  W kron I_4), so the shuffle moves the narrow output instead of the wide input.
- activations and 2D weights are kept channels-last (NHWC) in memory: with 1 to 32 channels,
  oneDNN's NHWC kernels beat its channel-blocked ones (which pad channels to 8 or 16).
  Except BatchNorm in training on a CPU: its channels-last kernel sums the batch statistics
  far less precisely (relative error 4e-5 against 6e-8 at 8 x 12 x 192 x 192, float32), and
  through a whole DDL step that made weight gradients up to 3 % off float64 (median 0.4 %)
  where the reference path is 0.02 % off (median 0.002 %); it runs on NCHW memory instead
  (``precise_bn``, the default; it costs about 30 % of a ``cpu``-preset step, docs/speed.md).
- ``forward_pair``: a DDL step runs the network on X and on X_A = X + s * D, where
  D = M * (A - X) is zero outside the pseudo-anomaly boxes. The branch convolution is linear,
  so the first block computes conv(X) once and conv(X_A) = conv(X) + s * conv(D), with
  conv(D) run only on windows around the boxes. The weight gradient of conv(X), the costliest
  kernel of a step at a few channels, then runs once, on the sum of both passes' gradients;
  the gradient to s is <grad, conv(D)>.
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
        self.decode, self.merge, self.fast, self.precise_bn = decode, merge, True, True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, c_in, H, W) -> (B, c_out, H/2, W/2) encode, (B, c_out, 2H, 2W) decode."""
        if not self.fast:
            return self._forward_reference(x)
        return self._finish(self._mix(x))

    def forward_pair(
        self, x: torch.Tensor, s: torch.Tensor, D: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(block(x), block(x + s * D)) on the fast path, the branch convolution of x run once
        (see the module docstring). s: 0-dim (may carry grad); D: like x, zero outside boxes.
        Each output has its own BatchNorm batch statistics, as two separate calls would."""
        if not self.fast:
            raise ValueError("forward_pair needs the fast path (block.fast = True)")
        z = self._mix(x)  # (B, n*branch, H, W)
        return self._finish(z), self._finish(self._plus_conv(z, s, D))

    def _finish(self, z: torch.Tensor) -> torch.Tensor:
        """Concatenated branch outputs -> BN + ReLU, resize, final conv (+ BN + ReLU)."""
        p = self.precise_bn
        z = torch.relu_(_batch_norm(self.bn1, z, p))
        return self.act2(_batch_norm(self.bn2, self._resize_final(z), p))

    def _forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([conv(x) for conv in self.branches], dim=1)  # (B, n*branch, H, W)
        x = torch.relu(self.bn1(x))
        x = self.resize(x)  # encode: (B, 4n*c_out, H/2, W/2); decode: (B, n*c_out, 2H, 2W)
        return self.act2(self.bn2(self.final(x)))

    def _mix(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        """The concatenated branch outputs (B, n*branch, H, W); ``bias=False``: the linear
        part only (conv(D) of ``forward_pair``)."""
        if self.merge:
            k = max(c.kernel_size[0] for c in self.branches)
            w = torch.cat(
                [F.pad(c.weight, [(k - c.kernel_size[0]) // 2] * 4) for c in self.branches]
            )
            b = torch.cat([c.bias for c in self.branches]) if bias else None
            return F.conv2d(x, w, b, padding=k // 2)
        outs = [
            F.conv2d(x, c.weight, c.bias if bias else None, padding=c.padding)
            for c in self.branches
        ]
        return torch.cat(outs, dim=1)

    def _plus_conv(self, z: torch.Tensor, s: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """z + s * conv(D) (conv without bias), conv(D) computed only on one window per frame
        that covers D's non-zero pixels plus the kernel's reach (it is zero elsewhere, as the
        full convolution is). Windows share one size (the largest needed) and lie inside the
        frame; outside its box D is zero, so a larger window is exact. The sum is one
        out-of-place indexed add into z, so backward is a gather, not a copy per frame."""
        N, _, H, W = D.shape
        p = max(c.kernel_size[0] for c in self.branches) // 2
        nz = D.detach().abs().amax(1) > 0  # (N, H, W)
        rows, cols = nz.any(2), nz.any(1)  # (N, H), (N, W)
        frames = rows.any(1).nonzero().flatten().tolist()
        if not frames:
            return z
        spans = [(_span(rows[i], p, H), _span(cols[i], p, W)) for i in frames]
        h = max(r1 - r0 for (r0, r1), _ in spans)
        w = max(c1 - c0 for _, (c0, c1) in spans)
        if h * w * len(frames) * 2 > N * H * W:  # windows over half the area: go dense
            return z + s * self._mix(D, bias=False)
        ys = [min(r0, H - h) for (r0, _), _ in spans]  # window origins, one per frame
        xs = [min(c0, W - w) for _, (c0, _) in spans]
        at = zip(frames, ys, xs, strict=True)
        crops = torch.stack([D[i, :, y : y + h, x : x + w] for i, y, x in at])
        conv = self._mix(crops.contiguous(memory_format=like_format(z)), bias=False)
        # (F, c, h, w) -> one row of c values per window pixel, indexed into z as (N, H, W, c)
        vals = (s * conv).permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        dev = z.device
        y0 = torch.tensor(ys, device=dev)[:, None, None]
        x0 = torch.tensor(xs, device=dev)[:, None, None]
        ni = torch.tensor(frames, device=dev)[:, None, None].expand(-1, h, w).reshape(-1)
        hi = (y0 + torch.arange(h, device=dev)[None, :, None]).expand(-1, h, w).reshape(-1)
        wi = (x0 + torch.arange(w, device=dev)[None, None, :]).expand(-1, h, w).reshape(-1)
        out = z.permute(0, 2, 3, 1).index_put((ni, hi, wi), vals, accumulate=True)
        return out.permute(0, 3, 1, 2)

    def _resize_final(self, z: torch.Tensor) -> torch.Tensor:
        f = self.final
        if f.kernel_size != (1, 1):
            return f(self.resize(z))
        if self.decode:  # depth-to-space, then 1x1: the 1x1 on each sub-pixel first (weight
            # W kron I_4: channel c*4 + 2i + j holds sub-pixel (i, j)), then depth-to-space
            # of c_out*4 channels, so the shuffle moves the narrow output, not the wide input.
            # The 1x1 runs as a matrix product on the NHWC rows (z's memory on the fast path):
            # oneDNN sent this shape to its slow reference kernel (13.7 vs 8.8 ms fwd + bwd at
            # the cpu preset's up1, 1 thread)
            eye = torch.eye(4, dtype=f.weight.dtype, device=f.weight.device)
            w = torch.kron(f.weight.flatten(1), eye)
            y = F.linear(z.permute(0, 2, 3, 1), w, f.bias.repeat_interleave(4))
            return self.resize(y.permute(0, 3, 1, 2))
        c_out, c4 = f.weight.shape[:2]  # unshuffle channel c*4 + 2i + j == tap (c, i, j)
        return F.conv2d(z, f.weight.view(c_out, c4 // 4, 2, 2), f.bias, stride=2)


def _batch_norm(bn: nn.Module, z: torch.Tensor, precise: bool = True) -> torch.Tensor:
    """``bn(z)``; with ``precise``, a CPU BatchNorm in training runs on NCHW memory (see the
    module docstring: the channels-last kernel's batch statistics are imprecise), its output
    back in z's memory format. Evaluation (running statistics: an affine map) runs as is."""
    cpu_training = isinstance(bn, nn.BatchNorm2d) and bn.training and z.device.type == "cpu"
    if not (precise and cpu_training):
        return bn(z)
    return bn(z.contiguous()).contiguous(memory_format=like_format(z))


def _span(any_: torch.Tensor, pad: int, size: int) -> tuple[int, int]:
    """[first, last + 1) of the True entries of a 1-D mask, grown by ``pad``, clipped."""
    idx = any_.nonzero().flatten()
    return max(0, int(idx[0]) - pad), min(size, int(idx[-1]) + 1 + pad)


def like_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last when ``x`` (4-D) is laid out NHWC, else contiguous."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def set_fast_path(model: nn.Module, on: bool, precise_bn: bool = True) -> nn.Module:
    """Switch every ConvBlock of ``model`` to the fast (default) or the reference path; the
    fast path keeps 2D weights (and, through ``to_fast_layout``, activations) channels-last,
    and with ``precise_bn`` runs training BatchNorm on NCHW memory."""
    fmt = torch.channels_last if on else torch.contiguous_format
    for m in model.modules():
        if isinstance(m, ConvBlock):
            m.fast, m.precise_bn = on, precise_bn
        elif isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=fmt)
    return model


def to_fast_layout(x: torch.Tensor, block: ConvBlock) -> torch.Tensor:
    """(N, C, H, W) in channels-last (NHWC) memory when ``block`` runs the fast path: oneDNN's
    NHWC kernels handle few channels far better than its blocked NCHW ones (same values)."""
    return x.contiguous(memory_format=torch.channels_last) if block.fast else x
