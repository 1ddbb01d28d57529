"""The size a compression search must reach, in one vocabulary for every search.

A user states a hard budget on the measure that matters for the search with `--max-flops` or
`--max-params` (SR search: `--max-params` and `--max-mult-adds`):

- a plain number is a fraction of the search's reference network: `--max-flops 0.5` is half the FLOPs
  of the original network (pruning), of each original generator (CycleGAN), or, for binary search,
  the FLOPs+BOPs/64 of the plain 1x binary network, so values above 1 mean a wider network there;
- a number with a k, M or G suffix is an absolute count: `--max-params 330k`.

The budget is met by one rule, `repair_to_budget` below, which the GA core
(`searchlab.evolvers.ga.GenerationalGA.fit_budget`) applies to every candidate: a candidate over the
budget loses units (filters, channels, width steps, block genes) at random until it fits, and one far
under it gets units back while it still fits, so candidates land in the band [limit * (1 - slack),
limit] wherever the units are fine enough. This module holds what the configs, the GA, the reports and
`status` share: parsing a target, the resolved budget, the rule and how a budget reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from searchlab.errors import ConfigError
from searchlab.options import opt

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([kKmMgG]?)\s*$")
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
SLACK = 0.02  # the band under the limit that repair fills: candidates end within 2% of the budget


@dataclass(frozen=True)
class SizeTarget:
    """A parsed `--max-flops` / `--max-params` value: a fraction of the reference, or an absolute count."""

    measure: str
    value: float
    absolute: bool
    text: str

    def limit(self, reference: float | None) -> float:
        """The budget in the measure's own unit (FLOPs, parameters)."""
        if self.absolute:
            return self.value
        if reference is None:
            raise ConfigError(f"{flag(self.measure)} {self.text} is a fraction, but this search has no reference "
                              f"network to take it of; give an absolute count, e.g. {flag(self.measure)} 330k")
        return self.value * reference


def flag(measure: str) -> str:
    return "--max-" + measure.replace("_", "-")


def parse_target(text: Any, measure: str, *, max_ratio: float | None = 1.0, absolute: bool = True,
                 ratio: bool = True) -> SizeTarget | None:
    """`""` -> None (no budget); "0.5" -> half the reference; "330k" -> 330,000. Out-of-range values are
    refused in one line that says what to write instead."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    raw = str(text).strip()
    match = _SIZE.match(raw)
    name = flag(measure)
    if not match:
        raise ConfigError(f"{name} {raw!r} is not a size; write a fraction of the original (e.g. {name} 0.5) or an "
                          f"absolute count with a k, M or G suffix (e.g. {name} 40M)")
    number = float(match.group(1) + (f"e{match.group(2)}" if match.group(2) else ""))
    suffix = match.group(3).lower()
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be above 0, got {raw}; e.g. {name} 0.5 keeps half")
    if suffix:
        if not absolute:
            raise ConfigError(f"{name} takes a fraction of the reference network here (e.g. {name} 0.5), not an "
                              f"absolute count like {raw}")
        return SizeTarget(measure, number * _SUFFIX[suffix], True, raw)
    if not ratio:
        raise ConfigError(f"{name} {raw}: this search has no reference network; give an absolute count with a "
                          f"k, M or G suffix, e.g. {name} 330k")
    if max_ratio is not None and number > max_ratio:
        raise ConfigError(f"{name} {raw} is above {max_ratio:g}: a pruned network cannot be larger than the original; "
                          f"give a fraction such as {name} 0.5 (half) or an absolute count such as {name} 40M")
    return SizeTarget(measure, number, False, raw)


def target_opt(what: str, reference: str | None, default: str = "", example: str = "0.5 = half", **meta: Any) -> Any:
    """The config field of a size target, with the same help text in every search: `what` is measured,
    fractions are of `reference` (None: absolute counts only)."""
    scale = (f"a fraction of {reference} ({example}) or an absolute count (40M, 330k)" if reference
             else "an absolute count (330k, 1.2M)")
    return opt(default, help=f"hard budget on {what}: {scale}; candidates are repaired to within "
                             f"{100 * SLACK:g}%% under it (empty: no budget)", **meta)


@dataclass(frozen=True)
class SizeBudget:
    """A resolved hard budget: `limit` in the measure's unit; `reference` is the size the fractions are of."""

    measure: str
    limit: float
    reference: float | None = None
    slack: float = SLACK

    @property
    def floor(self) -> float:
        """Repair grows candidates below this back toward the limit."""
        return self.limit * (1.0 - self.slack)

    def feasible(self, size: float) -> bool:
        return size <= self.limit * (1 + 1e-9)

    def violation(self, size: float) -> float:
        """How far over the budget, as a fraction of it (0 when within)."""
        return max(0.0, size / self.limit - 1.0)

    def to_json(self) -> dict:
        return {"measure": self.measure, "limit": self.limit, "reference": self.reference}

    @classmethod
    def from_json(cls, data: dict) -> "SizeBudget":
        ref = data.get("reference")
        return cls(str(data["measure"]), float(data["limit"]), None if ref is None else float(ref))

    def summary(self, size: float | None = None) -> str:
        """'flops <= 40.6M (0.5 of 81.1M)' and, with a size, 'reached 40.3M (0.497)'."""
        text = f"{self.measure} <= {human(self.limit)}"
        if self.reference:
            text += f" ({self.limit / self.reference:.3g} of {human(self.reference)})"
        if size is not None:
            text += f"; reached {human(size)}" + (f" ({size / self.reference:.3g})" if self.reference else "")
            text += "" if self.feasible(size) else " - over budget"
        return text


def repair_to_budget(genome: Any, budget: SizeBudget, size: Callable[[Any], float],
                     shrink: Callable[[Any, Any], Any | None],
                     grow: Callable[[Any, Any], Any | None], rng: Any,
                     misses: int = 64) -> Any:
    """The budget rule of every search: while over the limit, take one random unit away (`shrink`);
    then, while under the band's floor, add one random unit back if the result still fits (`grow`),
    giving up after `misses` additions that would not fit. A genome that cannot shrink further stays
    over budget and is ranked behind every feasible one."""
    current = size(genome)
    while not budget.feasible(current):
        smaller = shrink(genome, rng)
        if smaller is None:
            return genome
        genome, current = smaller, size(smaller)
    missed = 0
    while current < budget.floor and missed < misses:
        bigger = grow(genome, rng)
        if bigger is None:
            break
        bigger_size = size(bigger)
        if budget.feasible(bigger_size):
            genome, current = bigger, bigger_size
        else:
            missed += 1
    return genome


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return f"{n:.4g}"
