"""`predict --top K` / `searchlab.predict(top=K)`: the K best-predicted cells of the whole table, chosen by a
partial selection that gives exactly what a stable sort of all scores gives, from scores kept in the cache."""

import numpy as np
import pytest

import searchlab
from searchlab.predictors.base import Predictor
from searchlab.predictors.commands import top_rows
from searchlab.predictors.table import load_predictor_table


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_rows_is_a_stable_sort_of_the_best(dtype):
    rng = np.random.default_rng(0)
    for scores in (rng.integers(0, 20, 5000).astype(dtype), rng.standard_normal(3000).astype(dtype)):
        full = np.argsort(-scores.astype(np.float64), kind="stable")
        for k in (1, 3, 19, 100, 2999, 3000, 6000):
            assert np.array_equal(top_rows(scores, k), full[:k]), k


def test_the_top_of_the_table_is_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "p"
    searchlab.train_predictor("renas", out, labels=30, seed=0, space="nasbench201", renas_epochs=2)
    predictor = Predictor.load(out)
    scores = predictor.predict(load_predictor_table(space="nasbench201").cells)
    expected = np.argsort(-scores.astype(np.float64), kind="stable")[:5]
    first = searchlab.predict(out, top=5)
    assert [r["index"] for r in first] == expected.tolist() and [r["rank"] for r in first] == [1, 2, 3, 4, 5]
    assert [r["predicted"] for r in first] == [float(scores[i]) for i in expected]
    (cached,) = (tmp_path / "cache" / "predictions").glob("*.npy")
    assert searchlab.predict(out, top=5) == first
    cached.write_bytes(b"damaged")
    assert searchlab.predict(out, top=5) == first
    assert np.array_equal(np.load(cached), scores)
