"""The core contracts every space, strategy and evaluator follows (see DESIGN.md, "Core contracts")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

import numpy as np

Genome = Any
"""A plain JSON-able value (dict, list, int, str), treated as immutable."""


@dataclass(frozen=True)
class Result:
    """The outcome of evaluating one candidate.

    A non-finite objective turns an "ok" result into a failure, so a NaN never reaches a strategy
    as if it were a score.
    """

    status: Literal["ok", "failed"]
    objectives: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise ValueError(f"Result.status must be 'ok' or 'failed', not {self.status!r}")
        if self.status == "ok":
            bad = [k for k, v in self.objectives.items() if not math.isfinite(float(v))]
            if bad:
                object.__setattr__(self, "status", "failed")
                object.__setattr__(self, "error", f"non-finite objective(s): {', '.join(bad)}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return {"status": self.status, "objectives": {k: float(v) for k, v in self.objectives.items()},
                "cost": {k: float(v) for k, v in self.cost.items()}, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping) -> "Result":
        return cls(status=data["status"], objectives=dict(data.get("objectives", {})),
                   cost=dict(data.get("cost", {})), error=data.get("error"))

    @classmethod
    def failed(cls, error: str, cost: dict[str, float] | None = None) -> "Result":
        return cls(status="failed", objectives={}, cost=cost or {}, error=error)


@runtime_checkable
class SearchSpace(Protocol):
    """What can be searched: sampling, mutation, validity and identity of genomes."""

    name: str

    def sample(self, rng: np.random.Generator) -> Genome: ...

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome: ...

    def validate(self, genome: Genome) -> Genome:
        """Return the canonical form of `genome`, or raise InvalidArchitecture(reason)."""
        ...

    def key(self, genome: Genome) -> str:
        """Equal for equivalent genomes; the run store answers repeated keys without re-evaluating."""
        ...

    def describe(self, genome: Genome) -> dict: ...


class ProtocolError(RuntimeError):
    """A strategy was used against its ask/tell contract (a tell it did not ask for, or out of order):
    a bug in the caller, not bad input."""


class Strategy:
    """Base of all strategies: ask/tell with JSON state, like Optuna's samplers.

    The engine tells results in trial order, so a strategy sees the same history whatever order
    evaluations finish in; its only randomness is its own `np.random.Generator`, saved in its state.
    """

    def ask(self, n: int) -> list[Genome]:
        """Up to n new candidates; fewer (even none) at a generation boundary."""
        raise NotImplementedError

    def tell(self, genome: Genome, result: Result) -> None:
        raise NotImplementedError

    def finished(self) -> bool:
        """True when the strategy's own limits (generations, pool) are spent."""
        return False

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


@runtime_checkable
class Evaluator(Protocol):
    """Scores a genome. `objectives` maps each objective name to "max" or "min"; the first is primary."""

    objectives: dict[str, str]

    def evaluate(self, genome: Genome, *, seed: int, device: str) -> Result: ...


@dataclass(frozen=True)
class Context:
    """What factories get besides their config: where the run lives, its seed and device choice."""

    run_dir: Path | None = None
    seed: int = 0
    device: str = "auto"
    verbose: bool = False
    run: Any = None  # the final step's read-only view of the run (searchlab.store.run_view.RunView)
