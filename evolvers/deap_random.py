"""DEAP's operators draw from Python's global `random`; this runs them on a run's own generator.

Inside `with deap_random(rng):` the global `random` is seeded from `rng` (so the operators are
reproducible from the strategy's saved state) and restored afterwards (so nothing else is affected).
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def deap_random(rng: np.random.Generator) -> Iterator[None]:
    saved = random.getstate()
    random.seed(int(rng.integers(2**63)))
    try:
        yield
    finally:
        random.setstate(saved)
