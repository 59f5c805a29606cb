import math
import shutil

import numpy as np
import pytest
import torch

from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.train.loss import ddl_loss, distinction_terms, pixel_dist, recon_loss


def test_eq1_eq2_by_hand():
    X = torch.tensor([0.2, 0.4, 0.6, 0.8]).reshape(1, 1, 1, 2, 2)
    A = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 1, 2, 2)
    M = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 1, 2, 2)
    c = PseudoAnomalyCreator("static", sigma=0.25)
    XA = c(X, M, A)
    # masked: 0.75*x + 0.25*a ; unmasked: x
    expect = torch.tensor([0.75 * 0.2 + 0.25, 0.75 * 0.4, 0.6, 0.8]).reshape(1, 1, 1, 2, 2)
    assert torch.allclose(XA, expect)


def test_dynamic_sigma_starts_at_half_and_none_mode_disabled():
    c = PseudoAnomalyCreator("dynamic")
    assert float(c.sigma().detach()) == pytest.approx(0.5)
    assert not PseudoAnomalyCreator("none").enabled
    with pytest.raises(ValueError, match="mode"):
        PseudoAnomalyCreator("adaptive")


def test_eq4_recon_by_hand():
    x = torch.zeros(1, 2, 1, 2)  # C = 2, H = 1, W = 2
    y = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]])
    # pixel 0: ||(3,4)|| / sqrt(2) = 5/sqrt(2); pixel 1: 0 -> mean = 2.5/sqrt(2)
    assert float(recon_loss(x, y)) == pytest.approx(2.5 / math.sqrt(2))
    assert pixel_dist(x, y).shape == (1, 1, 2)


def test_eq5_to_eq7_region_norm_by_hand():
    x_t = torch.zeros(1, 1, 1, 3)
    xa_t = torch.ones(1, 1, 1, 3)
    ya = torch.tensor([0.3, 0.6, 0.9]).reshape(1, 1, 1, 3)
    m = torch.tensor([[[1.0, 1.0, 0.0]]])
    ratio, P, N = distinction_terms(x_t, xa_t, ya, m, eps=0.0, norm="region")
    P_hand = math.sqrt(0.3**2 + 0.6**2)  # ||M (X^t - f(X_A))||
    N_hand = math.sqrt(0.7**2 + 0.4**2)  # ||M (X_A^t - f(X_A))||
    assert float(P) == pytest.approx(P_hand)
    assert float(N) == pytest.approx(N_hand)
    assert float(ratio) == pytest.approx(P_hand / N_hand)


def test_eq7_pixel_norm_by_hand():
    x_t = torch.zeros(1, 1, 1, 2)
    xa_t = torch.ones(1, 1, 1, 2)
    ya = torch.tensor([0.2, 0.5]).reshape(1, 1, 1, 2)
    m = torch.ones(1, 1, 2)
    ratio, _, _ = distinction_terms(x_t, xa_t, ya, m, eps=0.0, norm="pixel")
    assert float(ratio) == pytest.approx((0.2 / 0.8 + 0.5 / 0.5) / 2)


def test_eq3_total_and_unmasked_clips_ignored():
    torch.manual_seed(0)
    x_t, y, xa_t, ya = (torch.rand(2, 1, 4, 4) for _ in range(4))
    m = torch.zeros(2, 4, 4)
    m[0, 1:3, 1:3] = 1  # only clip 0 carries a mask
    parts = ddl_loss(x_t, y, xa_t, ya, m, lam=0.5, eps=1e-6)
    ratio, _, _ = distinction_terms(x_t[:1], xa_t[:1], ya[:1], m[:1], eps=1e-6)
    assert float(parts.dist) == pytest.approx(float(ratio[0]))
    assert float(parts.total) == pytest.approx(float(parts.recon) + 0.5 * float(parts.dist))
    none = ddl_loss(x_t, y, xa_t, ya, torch.zeros(2, 4, 4))
    assert float(none.dist) == 0 and float(none.total) == float(none.recon)


@pytest.mark.parametrize("mode,expect_grad", [("dynamic", True), ("static", False)])
def test_gradient_reaches_l_in_dynamic_mode_only(mode, expect_grad):
    torch.manual_seed(0)
    c = PseudoAnomalyCreator(mode)
    X = torch.rand(2, 1, 3, 8, 8)
    M = torch.zeros(2, 1, 3, 8, 8)
    M[..., 2:6, 2:6] = 1
    XA = c(X, M)
    f = torch.nn.Conv2d(1, 1, 3, padding=1)  # stand-in for the model
    ya = torch.sigmoid(f(XA[:, :, 1]))
    y = torch.sigmoid(f(X[:, :, 1]))
    ddl_loss(X[:, :, 1], y, XA[:, :, 1], ya, M[:, 0, 1]).total.backward()
    params = list(c.parameters())
    if expect_grad:
        assert params and params[0].grad is not None and float(params[0].grad.abs()) > 0
    else:
        assert params == []  # static sigma is a buffer: nothing for the optimiser to move


def test_fast_pixel_dist_equals_vector_norm_with_zero_distances():
    """Same values and gradients as torch.linalg.vector_norm, including pixels at distance
    exactly 0 (gradient 0, not NaN)."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    b0 = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    b0[0, :, 1, 2] = a[0, :, 1, 2]  # a zero distance
    out = {}
    for fast in (True, False):
        b = b0.clone().requires_grad_(True)
        d = pixel_dist(a, b, fast)
        (d * torch.arange(d.numel(), dtype=d.dtype).view_as(d)).sum().backward()
        out[fast] = (d.detach(), b.grad)
    torch.testing.assert_close(out[True][0], out[False][0])
    torch.testing.assert_close(out[True][1], out[False][1])
    assert float(out[True][0][0, 1, 2]) == 0.0 and torch.isfinite(out[True][1]).all()


@pytest.mark.parametrize("fast", [True, False])
def test_a_nan_reconstruction_is_a_nan_distance(fast):
    """The fast distance took NaN > 0 as False and gave 0: a diverged run logged loss 0."""
    a = torch.zeros(1, 3, 2, 2)
    b = a.clone()
    b[0, 1, 0, 0] = math.nan
    d = pixel_dist(a, b, fast)
    assert math.isnan(d[0, 0, 0]) and d[0, 1, 1] == 0


def test_sigma_landscape_probe_blends_the_runs_masks_at_each_strength(trained_run, tmp_path):
    """bench/sigma_landscape.py: P, N and the ratio at every s of its grid; N (distance from
    the anomalous input) grows with s because the blend moves X_A away from X inside the mask,
    which an unmasked or unblended probe would not show."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "bench" / "sigma_landscape.py"
    spec = importlib.util.spec_from_file_location("sigma_landscape", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = tmp_path / "run"  # the tiny scene has no tracks: random boxes, as its ablation tests
    shutil.copytree(trained_run, run)
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("no_track: skip", "no_track: random"))
    r = mod.probe(run, 1, "batch")
    assert r["mode"] == "dynamic" and len(r["ratio"]) == len(r["N"]) == len(mod.GRID)
    assert all(np.isfinite(r["ratio"])) and r["argmin_s"] in mod.GRID
    assert r["N"][-1] > 2 * r["N"][0] > 0
    assert mod.elasticity([0.1, 0.2, 0.4], [1.0, 4.0, 16.0], 0.2) == pytest.approx(2.0)
