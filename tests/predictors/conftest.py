"""Shared helpers: small samples of the bundled NAS-Bench-101 table (no ../shared needed)."""

from __future__ import annotations

import numpy as np
import pytest

from searchlab.predictors.features import Cells
from searchlab.predictors.table import load_predictor_table


@pytest.fixture(scope="module", autouse=True)
def _test_cache(shared_cache):
    """Every fixture and test here uses the session's cache folder (tests of the cache set their own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHLAB_CACHE_DIR", str(shared_cache))
        yield


@pytest.fixture(scope="session")
def table():
    return load_predictor_table()


def _sample(table, n: int, seed: int, offset: int = 0):
    """n random table cells (without row indices, so encodings are computed, not read from a cache)."""
    rows = np.random.default_rng(seed).permutation(len(table))[offset:offset + n]
    c = table.cells.take(rows)
    return Cells(c.adjacency, c.ops), table.target("test_accuracy")[rows], rows


@pytest.fixture(scope="session")
def sample():
    return _sample
