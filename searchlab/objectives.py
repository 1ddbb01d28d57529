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


# ------------------------------------------------------------------ how objectives read on a plot
QUALITY = ("accuracy", "psnr")   # what users judge a network by, preferred over a search's own score
COSTS = ("flops", "params", "mult_adds", "flops_bops64", "size_bits", "cost_ratio")
NAMES = {"accuracy": "accuracy", "psnr": "PSNR", "fitness": "fitness", "flops": "FLOPs", "params": "parameters",
         "mult_adds": "mult-adds", "flops_bops64": "FLOPs + BOPs/64", "size_bits": "model size",
         "cost_ratio": "cost", "resemble": "resemblance loss", "cycle": "cycle loss"}
UNITS = {"psnr": "dB", "size_bits": "bits", "cost_ratio": "x the 1x binary network"}


def tradeoff_axes(objectives: dict[str, str], cost_first: str | None = None) -> tuple[str, str] | None:
    """(quality, cost): the objectives a trade-off plot puts on its y and x axes, or None when the run has
    no pair. Quality: accuracy or PSNR when declared, else the first objective to maximise; cost: `cost_first`
    (a size budget's measure) when declared, else the first size measure (COSTS) in the evaluator's order,
    else the first objective to minimise."""
    names = list(objectives)
    quality = next((n for n in QUALITY if n in objectives), None) or \
        next((n for n in names if objectives[n] == "max"), None)
    costs = ([cost_first] if cost_first in objectives else []) + [n for n in names if n in COSTS]
    cost = next(iter(costs), None) or next((n for n in names if objectives[n] == "min"), None)
    return (quality, cost) if quality and cost else None


def axis_scale(name: str, values: list[float]) -> tuple[float, str]:
    """(factor, axis label with unit) to show an objective's values: fractions of accuracy as %,
    counts (FLOPs, parameters) in k, M or G."""
    label, unit, factor = NAMES.get(name, name), UNITS.get(name, ""), 1.0
    finite = [abs(v) for v in values if math.isfinite(v)]
    top = max(finite, default=0.0)
    if name == "accuracy":
        factor, unit = (100.0, "%") if top <= 1.0 else (1.0, "%")
    elif name in ("flops", "params", "mult_adds", "flops_bops64"):
        for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if top >= scale:
                factor, unit = 1.0 / scale, suffix
                break
        else:
            unit = "count"
    return factor, f"{label} ({unit})" if unit else label
