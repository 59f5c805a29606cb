"""The fast path (merged branches, stride-2 space-to-depth, the first convolution shared by
the X and X_A passes) computes the reference path's forward and gradients, on every model
variant."""

import copy

import pytest
import torch

from ddlvad.models import MODELS, build_model, model_T
from ddlvad.models.blocks import ConvBlock, set_fast_path
from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.train.loop import DDLNet
from ddlvad.train.loss import ddl_loss


def _pair(name, C, kernels, final_kernel, mode):
    torch.manual_seed(0)
    m = build_model(
        name, C=C, T=model_T(name, 3), latent=16, kernels=kernels, final_kernel=final_kernel
    ).double()
    creator = PseudoAnomalyCreator(mode, sigma=0.4, l_init=0.3).double()
    ref = DDLNet(copy.deepcopy(m), copy.deepcopy(creator), fast=False)
    fast = DDLNet(m, creator, fast=True)
    return ref, fast


def _step(net, X, M, A):
    """One DDL forward + backward (train mode); returns outputs, loss and every gradient."""
    net.train()
    net.zero_grad(set_to_none=True)
    y, X_A, ya = net(X, M, A)
    t = X.shape[2] // 2
    parts = ddl_loss(X[:, :, t], y, X_A[:, :, t], ya, M[:, 0, t], fast=net.fast)
    parts.total.backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    return y.detach(), ya.detach(), parts.total.detach(), grads


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("kernels,final_kernel", [((3, 5, 7), 1), ((3, 3, 3, 3), 1), ((3,), 3)])
@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_fast_path_equals_reference(name, C, kernels, final_kernel, mode):
    ref, fast = _pair(name, C, kernels, final_kernel, mode)
    T = model_T(name, 3)
    g = torch.Generator().manual_seed(1)
    X = torch.rand(3, C, T, 32, 48, generator=g, dtype=torch.float64)
    A = torch.rand(3, C, T, 32, 48, generator=g, dtype=torch.float64)
    M = torch.zeros(3, 1, T, 32, 48, dtype=torch.float64)
    M[0, :, :, 4:20, 8:30] = 1
    M[1, :, -1, 26:32, 0:5] = 1  # in a corner, on one time step only
    M[2, :, :, 10:14, 30:40] = 1
    r, f = _step(ref, X, M, A), _step(fast, X, M, A)
    for a, b in zip(r[:3], f[:3], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert r[3].keys() == f[3].keys()
    if mode == "dynamic":
        assert "creator.l" in f[3] and float(f[3]["creator.l"].abs()) > 0
    for k in r[3]:
        torch.testing.assert_close(f[3][k], r[3][k], rtol=1e-8, atol=1e-12, msg=k)


def test_reference_path_refuses_pair_and_switch_reaches_every_block():
    m = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7))
    blocks = [b for b in m.modules() if isinstance(b, ConvBlock)]
    assert blocks and all(b.fast for b in blocks)
    set_fast_path(m, False)
    assert not any(b.fast for b in blocks)
    with pytest.raises(ValueError, match="fast path"):
        m.forward_pair(torch.rand(1, 1, 3, 32, 32), torch.tensor(0.5), torch.rand(1, 1, 3, 32, 32))


@pytest.mark.parametrize("box", [None, (0, 32, 0, 48), (5, 9, 40, 48), (0, 3, 0, 2)])
def test_windowed_correction_equals_dense_convolution(box):
    """z + s * conv(D), conv(D) run on windows around D's non-zero pixels, equals the dense
    bias-free convolution: no box, a frame-sized box (the dense fallback), boxes at edges."""
    torch.manual_seed(0)
    block = ConvBlock(3, 4, kernels=(3, 5, 7), merge=True).double()
    D = torch.zeros(4, 3, 32, 48, dtype=torch.float64)
    if box:
        y0, y1, x0, x1 = box
        D[1, :, y0:y1, x0:x1] = torch.rand(3, y1 - y0, x1 - x0, dtype=torch.float64)
    D[3, :, 12:20, 20:22] = 1.0
    z, s = torch.rand(4, 12, 32, 48, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    want = z + s * block._mix(D, bias=False)
    torch.testing.assert_close(block._plus_conv(z, s, D), want)


def test_fast_and_reference_checkpoints_interchange():
    a = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7))
    b = set_fast_path(build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7)), False)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    X = torch.rand(2, 1, 3, 32, 32)
    torch.testing.assert_close(a(X), b(X), rtol=1e-5, atol=1e-6)


def _bn_grad_error(precise_bn: bool = True):
    """Relative error against float64 of a fast-path ConvBlock's weight gradient in float32
    training at a size where CPU channels-last BatchNorm statistics lose precision."""
    torch.manual_seed(0)
    block = ConvBlock(3, 8, kernels=(3,)).train()
    x = torch.rand(8, 3, 192, 192) * 4 + 2
    g = torch.randn(8, 8, 96, 96)
    grads = []
    for dtype in (torch.float64, torch.float32):
        b = copy.deepcopy(block).to(dtype)
        set_fast_path(b, True, precise_bn)
        xx = x.to(dtype).contiguous(memory_format=torch.channels_last)
        (b(xx) * g.to(dtype)).sum().backward()
        grads.append(b.branches[0].weight.grad.double())
    return float((grads[1] - grads[0]).norm() / grads[0].norm())


def test_fast_path_training_batch_norm_is_as_precise_as_nchw():
    precise = _bn_grad_error()
    assert precise < 1e-4 and precise * 10 < _bn_grad_error(precise_bn=False)
