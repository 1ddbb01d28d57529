import numpy as np
import pytest

from searchlab.predictors.metrics import kendall_tau, precision_at_k, ranking_report, spearman_rho


def test_rank_correlations():
    y = np.array([0.1, 0.4, 0.2, 0.9, 0.5])
    assert kendall_tau(y, y * 3 + 1) == pytest.approx(1.0)
    assert kendall_tau(y, -y) == pytest.approx(-1.0)
    assert spearman_rho(y, np.exp(y)) == pytest.approx(1.0)
    # one swapped pair of 10: tau = (9 - 1) / 10
    assert kendall_tau([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(0.8)


def test_precision_at_k():
    y = np.arange(10.0)
    pred = y.copy()
    pred[9], pred[0] = -1.0, 100.0  # the best cell is predicted worst, the worst predicted best
    assert precision_at_k(y, y, 3) == 1.0
    assert precision_at_k(y, pred, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y, -y, 5) == 0.0
    with pytest.raises(ValueError):
        precision_at_k([], [], 1)


def test_report_keys():
    r = ranking_report(np.arange(200.0), np.arange(200.0) ** 2, ks=(10,))
    assert r["kendall_tau"] == pytest.approx(1.0) and r["precision_at_10"] == 1.0 and r["n"] == 200
