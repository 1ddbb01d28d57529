"""Ranking metrics of a performance predictor: pure functions over (true, predicted) arrays."""

from __future__ import annotations

import numpy as np
from scipy import stats


def kendall_tau(y_true, y_pred) -> float:
    """Kendall's tau-b between true and predicted values (scipy.stats.kendalltau)."""
    return float(stats.kendalltau(np.asarray(y_true), np.asarray(y_pred)).statistic)


def spearman_rho(y_true, y_pred) -> float:
    """Spearman's rank correlation (scipy.stats.spearmanr)."""
    return float(stats.spearmanr(np.asarray(y_true), np.asarray(y_pred)).statistic)


def precision_at_k(y_true, y_pred, k: int) -> float:
    """Fraction of the k truly best cells that are among the k predicted best (higher is better)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(min(k, len(y_true)))
    if k <= 0:
        raise ValueError("precision_at_k needs k >= 1 and a non-empty set")
    top_true = np.argpartition(-y_true, k - 1)[:k]
    top_pred = np.argpartition(-y_pred, k - 1)[:k]
    return len(np.intersect1d(top_true, top_pred)) / k


def ranking_report(y_true, y_pred, ks: tuple[int, ...] = (10, 100)) -> dict[str, float]:
    """Kendall tau, Spearman rho and precision@k for each k, as one dict."""
    out = {"kendall_tau": kendall_tau(y_true, y_pred), "spearman_rho": spearman_rho(y_true, y_pred)}
    for k in ks:
        out[f"precision_at_{k}"] = precision_at_k(y_true, y_pred, k)
    out["n"] = float(len(y_true))
    return out
