"""Objective directions and the best trial, in one place: turning a Result into one number to maximise
given the evaluator's objectives ({"accuracy": "max", "flops": "min"}; the first is the primary one)."""

from __future__ import annotations

import math
from typing import Any, Iterable

from searchlab.protocols import Result


def sign(mode: str) -> float:
    """+1 for an objective to maximise ("max"), -1 for one to minimise ("min")."""
    return 1.0 if mode == "max" else -1.0


def primary(objectives: dict[str, str]) -> tuple[str, float]:
    """The primary objective's name and sign (+1 to maximise, -1 to minimise)."""
    if not objectives:
        raise ValueError("the evaluator declares no objectives")
    name, mode = next(iter(objectives.items()))
    return name, sign(mode)


def best_trial(trials: Iterable[Any], objectives: dict[str, str]) -> Any | None:
    """The finished trial (anything with a `.result`) with the best primary objective; ties: the earliest."""
    if not objectives:
        return None
    best, best_value = None, -math.inf
    for t in trials:
        value = score(t.result, objectives) if t.result is not None else -math.inf
        if value > best_value:
            best, best_value = t, value
    return best


def score(result: Result, objectives: dict[str, str]) -> float:
    """Signed primary objective (higher is better); failed or missing results score -inf."""
    name, sign = primary(objectives)
    if not result.ok or name not in result.objectives:
        return -math.inf
    return sign * float(result.objectives[name])


def pareto_front(points: list[dict[str, float]], objectives: dict[str, str]) -> list[int]:
    """Indices of the points no other point dominates over all `objectives` (each with its direction):
    at least as good in every objective and better in one (equal points are all kept). Points missing
    an objective are left out."""
    names = list(objectives)
    signed = [(i, tuple(sign(objectives[n]) * float(p[n]) for n in names)) for i, p in enumerate(points)
              if all(n in p and not math.isnan(float(p[n])) for n in names)]
    signed.sort(key=lambda item: item[1], reverse=True)  # a point can only be dominated by one before it
    front: list[tuple[int, tuple]] = []
    for i, values in signed:
        if not any(other != values and all(a >= b for a, b in zip(other, values)) for _, other in front):
            front.append((i, values))
    return sorted(i for i, _ in front)
