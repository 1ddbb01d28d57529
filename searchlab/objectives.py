"""Turning a Result into one number to maximise, given the evaluator's objective directions."""

from __future__ import annotations

import math

from searchlab.protocols import Result


def primary(objectives: dict[str, str]) -> tuple[str, float]:
    """The primary objective's name and sign (+1 to maximise, -1 to minimise)."""
    if not objectives:
        raise ValueError("the evaluator declares no objectives")
    name, mode = next(iter(objectives.items()))
    return name, (1.0 if mode == "max" else -1.0)


def score(result: Result, objectives: dict[str, str]) -> float:
    """Signed primary objective (higher is better); failed or missing results score -inf."""
    name, sign = primary(objectives)
    if not result.ok or name not in result.objectives:
        return -math.inf
    return sign * float(result.objectives[name])
