"""The `coevolution` strategy: two mask populations (G_A, G_B) evolved in turn on the shared GA core, each
scored with the other side's current best held fixed; the paper's breeding step is `next_generation`.
With `--max-params` every mask is repaired into its generator's budget by the GA core's rule (one
channel at a time), the budget of the side whose generation it is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from searchlab.errors import ConfigError
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab.options import opt
from searchlab.protocols import Genome, Result
from searchlab.search_spaces import cyclegan as cg
from searchlab.size_target import repair_to_budget


def next_generation(masks: list[str], fitness: list[float], elite: str, size: int, rng: np.random.Generator,
                    repair: Callable[[np.ndarray, np.random.Generator], str],
                    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)) -> list[str]:
    """The paper's step: keep the elite, then fill by roulette selection / two-point crossover / segment
    flip (0.2 / 0.7 / 0.1)."""
    weights = [max(float(f), 1e-12) for f in fitness]  # roulette needs positive weights

    def select(k: int) -> list[str]:
        with deap_random(rng):
            return operators.sel_roulette(masks, weights, k)

    def bits(mask: str) -> list[int]:
        return [int(c) for c in mask]

    out = [elite]
    p_sel, p_cx, _ = probs
    while len(out) < size:
        u = rng.random()
        if u < p_sel:
            out += select(1)
        elif u < p_sel + p_cx:
            a, b = select(2)
            with deap_random(rng):
                children = operators.cx_two_point(bits(a), bits(b))
            out += ["".join(map(str, c)) for c in children][: size - len(out)]
        else:
            (parent,) = select(1)
            flipped = cg.mut_flip_segment(np.array(bits(parent), dtype=bool), rng)
            out.append("".join("1" if b else "0" for b in flipped))
    return [repair(np.frombuffer(m.encode(), dtype=np.uint8) == ord("1"), rng) for m in out]


@dataclass(frozen=True)
class CoevolutionConfig:
    """Co-evolution strategy: two populations of channel masks evolved in turn"""

    population: int = opt(32, help="individuals per generator population")
    generations: int = opt(10, help="rounds after the initial populations (each round: A, then B)")
    p_select: float = opt(0.2, help="probability of copying a roulette-selected individual")
    cx_prob: float = opt(0.7, help="probability of two-point crossover of two selected individuals",
                         aliases={"p_crossover": None})
    mut_prob: float = opt(0.1, help="probability of flipping a random bit range of a selected individual",
                          aliases={"p_mutation": None})

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, min_generations=0, p_select=self.p_select,
                         cx_prob=self.cx_prob, mut_prob=self.mut_prob)
        total = self.p_select + self.cx_prob + self.mut_prob
        if abs(total - 1) > 1e-6:
            raise ConfigError(f"--p-select, --cx-prob and --mut-prob must sum to 1, got {total:g}")


class CoevolutionStrategy(GenerationalGA):
    """Generation-wise ask/tell over the two sides: all of one side's population, then the other's.

    A genome is `{"side", "mask", "partner"}`; the partner is the other side's best mask at the time
    (None in the initial populations and when only one generator exists). Each side's population is
    one generation of the GA core, so round r, side s is generation r * len(sides) + s.
    """

    label = "coevolution"

    def __init__(self, space: cg.CycleganSpace, config: CoevolutionConfig, *, seed: int) -> None:
        self.sides = list(space.sides)
        super().__init__(space, seed, (config.generations + 1) * len(self.sides))
        self.config = config
        self.population: dict[str, list[str]] = {}
        self.fitness: dict[str, list[float]] = {}
        self.best: dict[str, str] = {}
        self.best_fitness: dict[str, float] = {}
        self.pending = self._population()

    # the budget's measure and unit steps: one channel of the current side's generator
    def size(self, genome: Genome) -> float:
        return self.space.size(genome["side"], genome["mask"])

    def shrink(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        mask = self.space.drop_channel(genome["side"], genome["mask"], rng)
        return None if mask is None else {**genome, "mask": mask}

    def grow(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        mask = self.space.add_channel(genome["side"], genome["mask"], rng)
        return None if mask is None else {**genome, "mask": mask}

    def fit_mask(self, side: str, mask: str) -> str:
        """A mask of `side` repaired into its generator's budget (the core's rule)."""
        budget = self.space.budgets.get(side)
        if budget is None:
            return mask
        genome = {"side": side, "mask": mask, "partner": None}
        return repair_to_budget(genome, budget, self.size, self.shrink, self.grow, self.rng)["mask"]

    @property
    def round(self) -> int:
        """0: the initial populations; 1..generations: evolution rounds."""
        return self.generation // len(self.sides)

    @property
    def side(self) -> str:
        return self.sides[self.generation % len(self.sides)]

    def _population(self) -> list[Genome]:
        side, size = self.side, self.config.population
        self.budget = self.space.budgets.get(side)  # the budget of the generator whose generation it is
        if self.round == 0:
            masks, partner = [self.fit_mask(side, self.space.random_mask(side, self.rng)) for _ in range(size)], None
        else:
            probs = (self.config.p_select, self.config.cx_prob, self.config.mut_prob)
            masks = next_generation(self.population[side], self.fitness[side], self.best[side], size, self.rng,
                                    lambda bits, rng: self.fit_mask(side, self.space.repair(side, bits, rng)), probs)
            other = self.space.other(side)
            partner = self.best.get(other) if other else None
        return [{"side": side, "mask": m, "partner": partner} for m in masks]

    def score(self, genome: Genome, result: Result) -> float:
        return float(result.objectives.get("fitness", 0.0)) if result.ok else 0.0

    def end_generation(self) -> None:
        side, masks = self.side, [g["mask"] for g in self.pending]
        (top,) = self.elites(self.members(), 1)
        self.population[side], self.fitness[side] = masks, list(self.scores)
        self.best[side], self.best_fitness[side] = top["genome"]["mask"], top["fitness"]
        self.record(self.members(), round=self.round, side=side, best_kept_bits=top["genome"]["mask"].count("1"))

    def breed(self) -> list[Genome]:
        return self._population()

    def best_pair(self) -> dict[str, str]:
        return dict(self.best)

    def extra_state(self) -> dict:
        return {"population": self.population, "fitness": self.fitness, "best_masks": self.best,
                "best_fitness": self.best_fitness}

    def load_extra_state(self, state: dict) -> None:
        state = json.loads(json.dumps(state))
        self.population, self.fitness = state["population"], state["fitness"]
        self.best, self.best_fitness = state["best_masks"], state["best_fitness"]
        self.budget = self.space.budgets.get(self.side)
