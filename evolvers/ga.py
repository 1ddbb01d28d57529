"""The generational genetic algorithm under the compression searches.

`GenerationalGA` does what every generational search shares, so that each search only supplies its
variation and its scoring:
- the ask/tell bookkeeping: a generation's genomes are handed out in order and their results taken in
  the same order (anything else is a `ProtocolError`); when the last result is told, the generation
  is closed and the next one bred; the state is plain JSON;
- the policies: ranking (`ranked`: failures last; under a size budget, feasible before infeasible,
  infeasible by how far over; then fitness, ties by position), elitism (`elites`), parent selection
  that never picks a failure unless every candidate failed, then picks uniformly (`parents`), one
  record per generation (`record`) and the best so far (`best_so_far`);
- the size budget a user states (`searchlab.size_target`): `fit_budget` repairs every genome toward it
  with the search's own `shrink` / `grow` steps (`repair_to_budget`, the one rule of every search).

A search subclasses it and supplies the hooks:
- `score(genome, result)`: the fitness the search keeps for a result (None for a failure);
- `end_generation()`: what to keep of the generation just told (elites, history, credits);
- `breed()`: the next generation's genomes to evaluate;
- with a budget: `size(genome)` in the budget's measure, and `shrink` / `grow`, one unit each.
It breeds with the plain operators of `evolvers/operators.py`, registered in a DEAP toolbox.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import numpy as np

from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.errors import ConfigError
from searchlab.protocols import Genome, ProtocolError, Result, Strategy
from searchlab.engine.seeding import make_rng, rng_from_state, rng_state
from searchlab.size_target import SizeBudget, repair_to_budget


def check_ga_options(population: int, generations: int, *, elite: int | None = None, min_generations: int = 1,
                     tournament_size: int | None = None, **probabilities: float) -> None:
    """The checks every GA config shares, with the one vocabulary of flags the four searches use
    (--population, --generations, --elite, --tournament-size, --cx-prob, --mut-prob, ...)."""
    if population < 2:
        raise ConfigError(f"--population must be at least 2, got {population}")
    if generations < min_generations:
        raise ConfigError(f"--generations must be at least {min_generations}, got {generations}")
    if elite is not None and not 0 <= elite < population:
        raise ConfigError(f"--elite must be between 0 and --population - 1, got {elite}; for --population "
                          f"{population} pass --elite {max(0, population - 1)} or less")
    if tournament_size is not None and not 1 <= tournament_size <= population:
        raise ConfigError(f"--tournament-size must be between 1 and --population ({population}), got {tournament_size}")
    for name, value in probabilities.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ConfigError(f"--{name.replace('_', '-')} must be a probability in [0, 1], got {value}")


class GenerationalGA(Strategy):
    """Ask/tell over generations: `pending` holds the current generation's genomes (in ask order), `scores`
    the fitness of those told so far; `generation` counts closed generations, `generations` ends the run."""

    label = "GA"  # names the search in protocol errors

    def __init__(self, space: Any, seed: int, generations: int, budget: SizeBudget | None = None) -> None:
        self.space = space
        self.rng = make_rng(seed)
        self.generations = generations
        self.budget = budget
        self.generation = 0
        self.pending: list[Genome] = []
        self.scores: list[float | None] = []
        self.asked = 0
        self.history: list[dict] = []
        self.best_so_far: dict | None = None  # {"genome", "fitness", "size", "generation"}

    # the hooks -------------------------------------------------------------------------------------
    def score(self, genome: Genome, result: Result) -> float | None:
        raise NotImplementedError

    def end_generation(self) -> None:
        """Called once all of `pending` is told (`scores` complete), before `generation` advances."""

    def breed(self) -> list[Genome]:
        raise NotImplementedError

    def extra_state(self) -> dict:
        """The search's own JSON state beside the bookkeeping."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def size(self, genome: Genome) -> float | None:
        """The genome's size in the budget's measure (searches with a budget supply it)."""
        return None

    def shrink(self, genome: Any, rng: np.random.Generator) -> Any | None:
        """The genome with one random unit less (None: nothing left to take)."""
        raise NotImplementedError

    def grow(self, genome: Any, rng: np.random.Generator) -> Any | None:
        """The genome with one random unit more (None: nothing left to add)."""
        raise NotImplementedError

    # the policies ----------------------------------------------------------------------------------
    def fit_budget(self, genome: Any) -> Any:
        """`genome` repaired toward the size budget (unchanged without one)."""
        if self.budget is None:
            return genome
        return repair_to_budget(genome, self.budget, self.size, self.shrink, self.grow, self.rng)

    def rank_key(self, fitness: float | None, genome: Genome) -> tuple:
        """Larger is better: a result before a failure; under a budget, within it before over it (and less
        over before more); then fitness."""
        if fitness is None:
            return (0, 0.0, -math.inf)
        violation = self.budget.violation(self.size(genome)) if self.budget is not None else 0.0
        return (1, -violation, float(fitness))

    def ranked(self, members: Sequence[dict]) -> list[dict]:
        """Members ({"genome", "fitness"}) best first; equal ones keep their order."""
        keys = [self.rank_key(m["fitness"], m["genome"]) for m in members]
        order = sorted(range(len(members)), key=lambda i: (keys[i], -i), reverse=True)
        return [members[i] for i in order]

    def elites(self, members: Sequence[dict], k: int) -> list[dict]:
        """The `k` best members, carried unchanged into the next generation."""
        return self.ranked(members)[:k]

    def parents(self, genomes: Sequence[Genome], scores: Sequence[float | None], k: int,
                select: Callable[..., list], weigh: Callable[[list[float]], list[float]] | None = None,
                **select_args: Any) -> list[Genome]:
        """`k` parents drawn by `select(items, weights, k, **select_args)` among the candidates that did not
        fail (their scores passed through `weigh`); when every candidate failed, `k` drawn uniformly from all."""
        ok = [i for i, s in enumerate(scores) if s is not None]
        with deap_random(self.rng):
            if not ok:
                return operators.sel_random(list(genomes), k)
            weights = [float(scores[i]) for i in ok]
            return select([genomes[i] for i in ok], weigh(weights) if weigh else weights, k, **select_args)

    def members(self) -> list[dict]:
        """The generation just told, as {"genome", "fitness"}."""
        return [{"genome": g, "fitness": f} for g, f in zip(self.pending, self.scores)]

    def record(self, members: Sequence[dict], **extra: Any) -> dict:
        """One history entry for the generation just told: best and mean fitness, failures, the best
        genome (and its size under a budget), and what the search adds."""
        ok = [m for m in members if m["fitness"] is not None]
        top = self.ranked(members)[0] if ok else None
        entry = {"generation": self.generation, "best": top["fitness"] if top else None,
                 "mean": float(np.mean([m["fitness"] for m in ok])) if ok else None,
                 "failed": len(members) - len(ok), "best_genome": copy.deepcopy(top["genome"]) if top else None}
        if self.budget is not None and top is not None:
            entry["best_size"] = self.size(top["genome"])
        entry.update(extra)
        self.history.append(entry)
        return entry

    def _note_best(self, genome: Genome, fitness: float | None) -> None:
        if fitness is None:
            return
        best = self.best_so_far
        if best is None or self.rank_key(fitness, genome) > self.rank_key(best["fitness"], best["genome"]):
            size = self.size(genome) if self.budget is not None else None
            self.best_so_far = {"genome": copy.deepcopy(genome), "fitness": float(fitness), "size": size,
                         "generation": self.generation}

    # the protocol ----------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Genome]:
        if self.finished():
            return []
        out = self.pending[self.asked:self.asked + max(0, n)]
        self.asked += len(out)
        return copy.deepcopy(out)

    def tell(self, genome: Genome, result: Result) -> None:
        index = len(self.scores)
        if index >= self.asked or self.space.key(genome) != self.space.key(self.pending[index]):
            raise ProtocolError(f"{self.label}: told a result it did not ask for next (results must be told in "
                                f"the order they were asked)")
        self.scores.append(self.score(genome, result))
        self._note_best(self.pending[index], self.scores[-1])
        if len(self.scores) == len(self.pending):
            self.end_generation()
            self.generation += 1
            self.asked = 0
            self.pending, self.scores = ([] if self.finished() else self.breed()), []

    def finished(self) -> bool:
        return self.generation >= self.generations

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.rng), "generation": self.generation, "pending": copy.deepcopy(self.pending),
                "scores": list(self.scores), "asked": self.asked, "history": copy.deepcopy(self.history),
                "best_so_far": copy.deepcopy(self.best_so_far), "budget": self.budget.to_json() if self.budget else None,
                **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng = rng_from_state(state["rng"])
        self.generation = int(state["generation"])
        self.pending = copy.deepcopy(list(state["pending"]))
        self.scores = [None if f is None else float(f) for f in state["scores"]]
        self.asked = int(state["asked"])
        self.history = copy.deepcopy(list(state["history"]))
        self.best_so_far = copy.deepcopy(state.get("best_so_far"))  # runs stored before the core kept it have none
        self.load_extra_state(state)
