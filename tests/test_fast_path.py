"""The fast path (merged branches, stride-2 space-to-depth, the affine-in-sigma first layer)
computes the reference path's forward and gradients, on every model variant."""

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
    parts = ddl_loss(X[:, :, t], y, X_A[:, :, t], ya, M[:, 0, t])
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
    M[2, :, :, 10:14, 30:40] = 1
    r, f = _step(ref, X, M, A), _step(fast, X, M, A)
    for a, b in zip(r[:3], f[:3], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert r[3].keys() == f[3].keys()
    if mode == "dynamic":
        assert "creator.l" in f[3] and float(f[3]["creator.l"].abs()) > 0
    for k in r[3]:
        torch.testing.assert_close(f[3][k], r[3][k], rtol=1e-8, atol=1e-12, msg=k)


def test_reference_path_refuses_sD_and_switch_reaches_every_block():
    m = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7))
    blocks = [b for b in m.modules() if isinstance(b, ConvBlock)]
    assert blocks and all(b.fast for b in blocks)
    set_fast_path(m, False)
    assert not any(b.fast for b in blocks)
    with pytest.raises(ValueError, match="fast path"):
        m(torch.rand(1, 1, 3, 32, 32), sD=(torch.tensor(0.5), torch.rand(1, 1, 3, 32, 32)))


def test_fast_and_reference_checkpoints_interchange():
    a = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7))
    b = set_fast_path(build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7)), False)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    X = torch.rand(2, 1, 3, 32, 32)
    torch.testing.assert_close(a(X), b(X), rtol=1e-5, atol=1e-6)
