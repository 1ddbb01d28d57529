"""The `binary-ga` strategy: a generational GA with elitism over per-layer width codes; fitness is
accuracy - lam * cost ratio, and every code is repaired into the hard budget (`--max-flops`, the GA
core's rule: one layer's ratio a step down while over, a step up while far under)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from searchlab.errors import ConfigError
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab.options import opt
from searchlab.protocols import Genome, Result
from searchlab.search_spaces.binary_widths import BinaryWidthSpace
from searchlab.size_target import SizeBudget, SizeTarget, parse_target, target_opt


MAX_TRIES = 50


def _legacy_budget(value) -> str:
    """`max_flops_ratio` of older runs and scripts: 0 meant no budget."""
    return "" if float(value) == 0 else f"{float(value):g}"


@dataclass(frozen=True)
class BinaryGAConfig:
    """genetic algorithm over binary widths"""

    population: int = opt(8, help="individuals per generation")
    generations: int = opt(4, help="generations to evaluate, the first one included")
    elite: int = opt(1, help="best individuals carried unchanged into the next generation")
    tournament_size: int = opt(2, help="contestants per tournament of parent selection", aliases={"tournament": None})
    cx_prob: float = opt(0.5, help="probability that two parents are crossed (uniform crossover)")
    mut_prob: float = opt(0.2, help="probability that each layer's ratio is redrawn in a child")
    lam: float = opt(0.0, help="penalty per unit of cost ratio: fitness = accuracy - lam * cost_ratio")
    max_flops: str = target_opt("FLOPs+BOPs/64", "the 1x binary network's", default="2",
                                example="2 = twice; above 1 widens", aliases={"max_flops_ratio": _legacy_budget})
    seed_1x: bool = opt(True, help="put the plain 1x binary network into the first generation")

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, elite=self.elite, tournament_size=self.tournament_size,
                         cx_prob=self.cx_prob, mut_prob=self.mut_prob)
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError(f"--lam must be >= 0, got {self.lam}")
        parse_target(self.max_flops, "flops", max_ratio=None)  # a malformed --max-flops is refused now

    @property
    def target(self) -> SizeTarget | None:
        return parse_target(self.max_flops, "flops", max_ratio=None)


def fitness(result: Result | None, cost_ratio: float, lam: float) -> float | None:
    """accuracy - lam * cost_ratio, or None for a failed candidate."""
    if result is None or not result.ok or "accuracy" not in result.objectives:
        return None
    return float(result.objectives["accuracy"]) - lam * cost_ratio


def _member(genome: list[int], score: float | None) -> dict:
    return {"genome": [int(v) for v in genome], "fitness": None if score is None else float(score)}


def budget_of(space: BinaryWidthSpace, target: SizeTarget | None) -> SizeBudget | None:
    """The hard budget in FLOPs+BOPs/64, its fractions taken of the 1x binary network; refused when even
    the cheapest code (the smallest ratio everywhere) is over it."""
    if target is None:
        return None
    budget = SizeBudget("flops_bops64", target.limit(space.base_cost()), space.base_cost())
    cheapest = space.cost_ratio(space.min_genome())
    if not budget.feasible(cheapest * space.base_cost()):
        raise ConfigError(f"no candidate meets --max-flops {target.text}: the cheapest {space.net} (every ratio "
                          f"{space.ratios[0]:g}) costs {cheapest:.3f}x the 1x binary network; raise the budget to at "
                          f"least {math.ceil(cheapest * 100) / 100:g} or allow smaller --ratios")
    return budget


class BinaryChannelGA(GenerationalGA):
    """Generational GA with elitism: each generation is the carried elites plus newly bred, never-seen
    children repaired into the budget; the whole state is JSON."""

    label = "binary-ga"

    def __init__(self, space: BinaryWidthSpace, config: BinaryGAConfig, seed: int) -> None:
        super().__init__(space, seed, config.generations, budget=budget_of(space, config.target))
        self.config = config
        self.population: list[dict] = []  # [{"genome", "fitness"}] of the last finished generation
        self.carried: list[dict] = []  # elites of the last generation, part of the current one
        self.seen: set[str] = set()
        self.toolbox = self._toolbox()
        self.pending = self._first_generation()

    def _toolbox(self):
        from deap import base

        toolbox = base.Toolbox()
        toolbox.register("select", operators.sel_tournament, tournsize=self.config.tournament_size)
        toolbox.register("mate", operators.cx_uniform, indpb=0.5)
        toolbox.register("mutate", operators.mut_uniform_int, low=0, up=len(self.space.ratios) - 1,
                         indpb=self.config.mut_prob)
        return toolbox

    # the budget's measure and unit steps: one layer's ratio one step down or up
    def size(self, genome: list[int]) -> float:
        return self.space.cost_ratio(genome) * self.space.base_cost()

    def shrink(self, genome: list[int], rng: np.random.Generator) -> list[int] | None:
        return self._step(genome, rng, -1)

    def grow(self, genome: list[int], rng: np.random.Generator) -> list[int] | None:
        return self._step(genome, rng, +1)

    def _step(self, genome: list[int], rng: np.random.Generator, step: int) -> list[int] | None:
        layers = [i for i, g in enumerate(genome) if 0 <= g + step < len(self.space.ratios)]
        if not layers:
            return None
        out = list(genome)
        out[int(rng.choice(layers))] += step
        return out

    # helpers
    def feasible(self, genome: list[int]) -> bool:
        return self.budget is None or self.budget.feasible(self.size(genome))

    def _novel(self, genome: list[int], taken: set[str]) -> bool:
        key = self.space.key(genome)
        return self.feasible(genome) and key not in self.seen and key not in taken

    def _random_feasible(self, taken: set[str]) -> list[int]:
        fallback = None
        for _ in range(MAX_TRIES * 4):
            g = self.fit_budget(self.space.sample(self.rng))
            if self._novel(g, taken):
                return g
            if fallback is None and self.feasible(g):
                fallback = g
        return fallback if fallback is not None else self.space.min_genome()

    def _first_generation(self) -> list[list[int]]:
        out: list[list[int]] = []
        taken: set[str] = set()
        one_x = self.space.one_x()
        if self.config.seed_1x and self.feasible(one_x):  # the reference network, as it is
            out.append(one_x)
            taken.add(self.space.key(one_x))
        while len(out) < self.config.population:
            g = self._random_feasible(taken)
            out.append(g)
            taken.add(self.space.key(g))
        return out

    def _offspring(self, count: int, taken: set[str]) -> list[list[int]]:
        """`count` children of tournament-selected parents (uniform crossover, uniform-integer mutation),
        repaired into the budget, pushed away from seen codes by the space's mutation, or fresh samples
        when that fails."""
        tb = self.toolbox
        genomes = [m["genome"] for m in self.population]
        scores = [m["fitness"] for m in self.population]
        children: list[list[int]] = []
        while len(children) < count:
            child = None
            for _ in range(MAX_TRIES):
                a, b = self.parents(genomes, scores, 2, tb.select)
                with deap_random(self.rng):
                    if random.random() < self.config.cx_prob:
                        a, b = tb.mate(a, b)
                    a = tb.mutate(a)
                candidate = self.fit_budget([int(v) for v in a])
                if self._novel(candidate, taken):
                    child = candidate
                    break
                # an unchanged or already-seen code: push it away with the space's own mutation
                candidate = self.fit_budget(self.space.mutate(candidate, self.rng))
                if self._novel(candidate, taken):
                    child = candidate
                    break
            if child is None:
                child = self._random_feasible(taken)
            children.append(child)
            taken.add(self.space.key(child))
        return children

    # the GA hooks
    def score(self, genome: Genome, result: Result) -> float | None:
        self.seen.add(self.space.key(genome))
        return fitness(result, self.space.cost_ratio(genome), self.config.lam)

    def end_generation(self) -> None:
        """The generation is the carried elites plus the evaluated children; its best `elite` go on."""
        self.population = self.carried + [_member(g, f) for g, f in zip(self.pending, self.scores)]
        self.carried = self.elites(self.population, self.config.elite)
        self.record(self.population)

    def breed(self) -> list[Genome]:
        taken = {self.space.key(m["genome"]) for m in self.population}
        return self._offspring(self.config.population - len(self.carried), taken)

    def extra_state(self) -> dict:
        return {"population": self.population, "carried": self.carried, "seen": sorted(self.seen)}

    def load_extra_state(self, state: dict) -> None:
        self.population = [_member(m["genome"], m["fitness"]) for m in state["population"]]
        self.carried = [_member(m["genome"], m["fitness"]) for m in state["carried"]]
        self.seen = set(state["seen"])
