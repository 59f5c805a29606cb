import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ddlvad.scoring.frame import error_map, patch_max
from ddlvad.scoring.metrics import (
    PixelAUC,
    auc,
    average_precision,
    eer,
    macro_auc,
    macro_videos,
    micro_auc,
    pixel_auc,
)
from ddlvad.scoring.post import minmax, smooth
from ddlvad.scoring.reconstruct import reconstruct_frames, reconstruct_video


def test_auc_hand_worked():
    # positives {0.8, 0.4}, negatives {0.6, 0.2}: pairs won 3 of 4 -> 0.75
    assert auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.6, 0.2])) == pytest.approx(0.75)
    assert np.isnan(auc(np.array([0, 0]), np.array([0.1, 0.2])))


def test_micro_and_macro_auc():
    y = [np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([1, 1, 1])]
    s = [np.array([0.1, 0.9, 0.8]), np.array([0.5, 0.7, 0.6]), np.array([0.2, 0.3, 0.4])]
    assert micro_auc(y, s) == pytest.approx(roc_auc_score(np.concatenate(y), np.concatenate(s)))
    # single-class video 3 is left out of the macro mean: (1.0 + 0.5) / 2
    assert macro_auc(y, s) == pytest.approx(0.75)


def test_eer_and_ap():
    y = np.array([0, 0, 1, 1])
    assert eer(y, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    assert eer(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    yy, ss = rng.integers(0, 2, 200), rng.random(200)
    assert average_precision(yy, ss) == pytest.approx(average_precision_score(yy, ss))
    assert 0.3 < eer(yy, ss) < 0.7  # random scores sit near 0.5


def test_error_map_and_patch_max_by_hand():
    x = torch.zeros(1, 2, 32, 32)
    y = torch.zeros(1, 2, 32, 32)
    y[0, 0, :16, :16] = 3.0
    y[0, 1, :16, :16] = 4.0  # error 5 in the top-left 16x16 patch
    e = error_map(x, y)
    assert e.shape == (1, 32, 32) and float(e[0, 0, 0]) == pytest.approx(5.0)
    assert float(patch_max(e, 16)[0]) == pytest.approx(5.0)
    e2 = torch.zeros(1, 32, 32)
    e2[0, 8:24, 8:24] = 1.0  # straddles four cells of the plain grid
    assert float(patch_max(e2, 16)[0]) == pytest.approx(0.25)
    assert float(patch_max(e2, 16, shifted=True)[0]) == pytest.approx(1.0)


def test_median_filter_and_minmax():
    s = np.array([0, 0, 9, 0, 0, 5, 5, 5, 5], float)
    out = smooth(s, 3)
    assert out[2] == 0 and out[6] == 5
    assert np.array_equal(smooth(s, 0), s)
    assert minmax(np.array([2.0, 4.0])).tolist() == [0.0, 1.0]


def test_micro_auc_hand_worked_pools_videos():
    # video a: pos 0.9, neg 0.3; video b: pos 0.5, neg 0.6. Pooled pairs (pos > neg):
    # 0.9 beats both negatives, 0.5 beats 0.3 only -> 3 of 4.
    y = [np.array([1, 0]), np.array([1, 0])]
    s = [np.array([0.9, 0.3]), np.array([0.5, 0.6])]
    assert micro_auc(y, s) == pytest.approx(0.75)
    assert macro_auc(y, s) == pytest.approx((1.0 + 0.0) / 2)


def test_macro_single_class_rule():
    y = [np.zeros(4, int), np.ones(3, int)]
    s = [np.arange(4.0), np.arange(3.0)]
    assert np.isnan(macro_auc(y, s)) and macro_videos(y) == 0
    y.append(np.array([0, 1]))
    s.append(np.array([0.2, 0.1]))
    assert macro_auc(y, s) == pytest.approx(0.0) and macro_videos(y) == 1


def test_eer_hand_worked_and_against_sklearn_roc():
    # thresholds give (fpr, fnr) = (0, 1), (0, .5), (.5, .5), (.5, 0), (1, 0): they meet at .5
    y = np.array([0, 0, 1, 1])
    assert eer(y, np.array([0.1, 0.6, 0.4, 0.9])) == pytest.approx(0.5)
    assert np.isnan(eer(np.zeros(3), np.arange(3.0)))
    rng = np.random.default_rng(1)
    yy = rng.integers(0, 2, 4000)
    ss = rng.normal(yy * 1.0, 1.0)  # two unit Gaussians 1 apart: EER = Phi(-0.5) ~ 0.3085
    fpr, tpr, _ = roc_curve(yy, ss)
    d = (1 - tpr) - fpr  # decreasing along the curve
    expected = float(np.interp(0.0, d[::-1], fpr[::-1]))
    assert eer(yy, ss) == pytest.approx(expected, abs=2e-3)
    assert eer(yy, ss) == pytest.approx(0.3085, abs=0.03)


def test_ap_hand_worked():
    # ranked: pos (P 1, R .5), neg, pos (P 2/3, R 1) -> AP = .5 * 1 + .5 * 2/3
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    assert average_precision(y, s) == pytest.approx(0.5 + 1 / 3)
    assert np.isnan(average_precision(np.ones(3), np.arange(3.0)))


def test_pixel_auc_hand_worked_and_sklearn():
    masks = np.zeros((1, 2, 2), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True
    maps = np.array([[[0.8, 0.6], [0.2, 0.4]]])  # pos {.8, .4} vs neg {.6, .2}: 3 of 4
    assert pixel_auc(masks, maps) == pytest.approx(0.75)
    rng = np.random.default_rng(2)
    m1, m2 = rng.random((3, 8, 8)) < 0.2, rng.random((2, 8, 8)) < 0.2
    e1, e2 = rng.random((3, 8, 8)) + m1, rng.random((2, 8, 8)) + 0.5 * m2
    acc = PixelAUC()
    acc.add(m1, e1)
    acc.add(m2, e2)
    y = np.concatenate([m1.ravel(), m2.ravel()])
    assert acc.value() == pytest.approx(roc_auc_score(y, np.concatenate([e1.ravel(), e2.ravel()])))
    assert acc.pixels == 5 * 64 and acc.anomalous_pixels == int(y.sum())
    sub = PixelAUC(stride=2)
    sub.add(m1, e1)  # every 2nd row and column
    assert sub.pixels == 3 * 16
    assert sub.value() == pytest.approx(
        roc_auc_score(m1[:, ::2, ::2].ravel(), e1[:, ::2, ::2].ravel())
    )


def test_pixel_auc_edge_cases():
    assert np.isnan(PixelAUC().value())
    assert np.isnan(pixel_auc(np.zeros((1, 2, 2)), np.ones((1, 2, 2))))
    with pytest.raises(ValueError, match="must both be"):
        PixelAUC().add(np.zeros((1, 2, 2)), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="stride"):
        PixelAUC(0)


class PrevFrame(torch.nn.Module):
    """f(X) = the first frame of the window: the error is the change since frame t - T//2."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X[:, :, 0]


def _ramp_video(n: int = 6) -> np.ndarray:
    return (np.arange(n, dtype=np.uint8)[:, None, None, None] * 10).repeat(8, 1).repeat(8, 2)


def test_edge_rules_clamp_and_copy():
    v = _ramp_video()  # (6, 8, 8, 1): frame k is all 10 k
    step = 10 / 255
    clamp, _ = reconstruct_video(PrevFrame(), v, 3, patch=4, edge="clamp")
    # frame 0's clip is (0, 0, 1): no change since its clamped left neighbour
    assert clamp == pytest.approx([0, step, step, step, step, step], abs=1e-6)
    copy, maps = reconstruct_video(PrevFrame(), v, 3, patch=4, edge="copy", keep_maps=True)
    assert copy == pytest.approx([step] * 6, abs=1e-6)
    assert maps.shape == (6, 8, 8) and np.allclose(maps[0], maps[1])
    with pytest.raises(ValueError, match="edge"):
        reconstruct_video(PrevFrame(), v, 3, patch=4, edge="mirror")
    with pytest.raises(ValueError, match="at least T"):
        reconstruct_video(PrevFrame(), v[:2], 3, patch=4, edge="copy")
    with pytest.raises(ValueError, match="score.patch"):
        reconstruct_video(PrevFrame(), v, 3, patch=16)
    with pytest.raises(ValueError, match="shifted grid"):  # 8 > 8 - 8 // 2
        reconstruct_video(PrevFrame(), v, 3, patch=8, shifted=True)
    assert len(reconstruct_video(PrevFrame(), v, 3, patch=5, shifted=True)[0]) == 6


def test_reconstruct_frames_shapes():
    x_t, y = reconstruct_frames(PrevFrame(), _ramp_video(), 3, [0, 4])
    assert x_t.shape == y.shape == (2, 8, 8, 1)
    assert x_t[1, 0, 0, 0] == pytest.approx(40 / 255) and y[1, 0, 0, 0] == pytest.approx(30 / 255)
