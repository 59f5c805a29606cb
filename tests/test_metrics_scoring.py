import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ddlvad.metrics import auc, average_precision, eer, macro_auc, micro_auc
from ddlvad.scoring import error_map, minmax, patch_max, smooth


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
