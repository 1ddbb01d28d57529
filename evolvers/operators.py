"""Genetic operators of the compression searches: plain functions, one name each.

As in DEAP's examples, the searches register these in a DEAP `base.Toolbox` under the names
`select`, `mate` and `mutate`. The functions that wrap DEAP draw from Python's global `random`, as
DEAP does; a search seeds it from its run's generator with `deap_random(rng)`, so the draws are
reproducible from the search's saved state. The others take that numpy generator directly.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np


@functools.cache
def _deap_types() -> tuple[type, type]:
    from deap import base

    class Fitness(base.Fitness):
        weights = (1.0,)

    class Individual(list):
        fitness: Fitness

    return Fitness, Individual


def _wrapped(weights: Sequence[float]) -> list:
    """DEAP individuals [i] with fitness weights[i]: selection picks indices, so any genome type works."""
    fitness_cls, individual_cls = _deap_types()
    out = []
    for i, w in enumerate(weights):
        ind = individual_cls([i])
        ind.fitness = fitness_cls((float(w),))
        out.append(ind)
    return out


# selection: (items, weights, k, ...) -> k items ---------------------------------------------------

def sel_roulette(items: Sequence[Any], weights: Sequence[float], k: int) -> list[Any]:
    """k items drawn with probability proportional to their weights (> 0), DEAP's selRoulette."""
    from deap import tools

    return [items[ind[0]] for ind in tools.selRoulette(_wrapped(weights), k)]


def sel_tournament(items: Sequence[Any], weights: Sequence[float], k: int, tournsize: int) -> list[Any]:
    """k winners of tournaments among `tournsize` random items (highest weight wins), DEAP's selTournament."""
    from deap import tools

    return [items[ind[0]] for ind in tools.selTournament(_wrapped(weights), k, tournsize=tournsize)]


def sel_random(items: Sequence[Any], k: int) -> list[Any]:
    """k items drawn uniformly with replacement, DEAP's selRandom."""
    from deap import tools

    return [items[ind[0]] for ind in tools.selRandom(_wrapped([0.0] * len(items)), k)]


# crossover: (a, b) -> (child, child), the parents untouched ----------------------------------------

def cx_two_point(a: Sequence[Any], b: Sequence[Any]) -> tuple[list, list]:
    """Swap the genes between two random cut points, DEAP's cxTwoPoint."""
    from deap import tools

    x, y = list(a), list(b)
    tools.cxTwoPoint(x, y)
    return x, y


def cx_uniform(a: Sequence[Any], b: Sequence[Any], indpb: float) -> tuple[list, list]:
    """Swap each gene with probability indpb, DEAP's cxUniform."""
    from deap import tools

    x, y = list(a), list(b)
    tools.cxUniform(x, y, indpb)
    return x, y


# mutation: genes -> new genes ---------------------------------------------------------------------

def mut_flip_bit(bits: Sequence[int], indpb: float) -> list[int]:
    """Flip each bit with probability indpb, DEAP's mutFlipBit."""
    from deap import tools

    (out,) = tools.mutFlipBit(list(bits), indpb=indpb)
    return out


def mut_uniform_int(genes: Sequence[int], low: int, up: int, indpb: float) -> list[int]:
    """Redraw each integer gene in [low, up] with probability indpb, DEAP's mutUniformInt."""
    from deap import tools

    (out,) = tools.mutUniformInt(list(genes), low, up, indpb)
    return out


def mut_flip_run(bits: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Flip one random run of 1 to max(2, n // 10) adjacent bits: a change local to one layer."""
    bits = list(bits)
    n = len(bits)
    length = int(rng.integers(1, max(2, n // 10) + 1))
    start = int(rng.integers(0, n - length + 1))
    return bits[:start] + [1 - b for b in bits[start:start + length]] + bits[start + length:]


# (CycleGAN co-evolution flips every bit between two random positions: that is the cyclegan space's own
# mutation, `search_spaces.cyclegan.mut_flip_segment`, which its GA registers too.)
