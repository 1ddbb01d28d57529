"""The `binary-ga` strategy: a generational GA with elitism over per-layer width codes; fitness is
accuracy - lam * cost ratio, and only codes within the hard budget are proposed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from searchlab.errors import ConfigError
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA
from searchlab.options import opt
from searchlab.protocols import Genome, Result
from searchlab.search_spaces.binary_widths import BinaryWidthSpace


MAX_TRIES = 50


@dataclass(frozen=True)
class BinaryGAConfig:
    """genetic algorithm over binary widths"""

    population: int = opt(8, help="individuals per generation")
    generations: int = opt(4, help="generations to evaluate, the first one included")
    elite: int = opt(1, help="best individuals carried unchanged into the next generation")
    tournament: int = opt(2, help="tournament size for parent selection")
    cx_prob: float = opt(0.5, help="probability that two parents are crossed (uniform crossover)")
    mut_prob: float = opt(0.2, help="probability that each layer's ratio is redrawn in a child")
    lam: float = opt(0.0, help="penalty per unit of cost ratio: fitness = accuracy - lam * cost_ratio")
    max_flops_ratio: float = opt(2.0, help="hard budget: FLOPs+BOPs/64 at most this times the 1x binary "
                                           "network's (0 = no budget)")
    seed_1x: bool = opt(True, help="put the plain 1x binary network into the first generation")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise ConfigError(f"--generations must be at least 1, got {self.generations}")
        if not 0 <= self.elite < self.population:
            raise ConfigError(f"--elite must be between 0 and --population - 1 ({self.population - 1})")
        if not 1 <= self.tournament <= self.population:
            raise ConfigError(f"--tournament must be between 1 and --population ({self.population})")
        for name in ("cx_prob", "mut_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError(f"--lam must be >= 0, got {self.lam}")
        if not math.isfinite(self.max_flops_ratio) or self.max_flops_ratio < 0:
            raise ConfigError(f"--max-flops-ratio must be >= 0 (0 = no budget), got {self.max_flops_ratio}")


def fitness(result: Result | None, cost_ratio: float, lam: float) -> float | None:
    """accuracy - lam * cost_ratio, or None for a failed candidate."""
    if result is None or not result.ok or "accuracy" not in result.objectives:
        return None
    return float(result.objectives["accuracy"]) - lam * cost_ratio


def _member(genome: list[int], score: float | None) -> dict:
    return {"genome": [int(v) for v in genome], "fitness": None if score is None else float(score)}


class BinaryChannelGA(GenerationalGA):
    """Generational GA with elitism: each generation is the carried elites plus newly bred, never-seen
    children that meet the budget; the whole state is JSON."""

    label = "binary-ga"

    def __init__(self, space: BinaryWidthSpace, config: BinaryGAConfig, seed: int) -> None:
        super().__init__(space, seed, config.generations)
        self.config = config
        budget = config.max_flops_ratio
        if budget > 0:
            cheapest = space.cost_ratio(space.min_genome())
            if cheapest > budget:
                raise ConfigError(f"no candidate meets --max-flops-ratio {budget:g}: the cheapest {space.net} "
                                  f"(every ratio {space.ratios[0]:g}) costs {cheapest:.3f}x the 1x binary network; "
                                  f"raise the budget to at least {math.ceil(cheapest * 100) / 100:g} or allow "
                                  f"smaller --ratios")
        self.population: list[dict] = []  # [{"genome", "fitness"}] of the last finished generation
        self.carried: list[dict] = []  # elites of the last generation, part of the current one
        self.seen: set[str] = set()
        self.toolbox = self._toolbox()
        self.pending = self._first_generation()

    def _toolbox(self):
        from deap import base

        toolbox = base.Toolbox()
        toolbox.register("select", operators.sel_tournament, tournsize=self.config.tournament)
        toolbox.register("mate", operators.cx_uniform, indpb=0.5)
        toolbox.register("mutate", operators.mut_uniform_int, low=0, up=len(self.space.ratios) - 1,
                         indpb=self.config.mut_prob)
        return toolbox

    # helpers
    def feasible(self, genome: list[int]) -> bool:
        return self.config.max_flops_ratio <= 0 or self.space.cost_ratio(genome) <= self.config.max_flops_ratio + 1e-9

    def _novel(self, genome: list[int], taken: set[str]) -> bool:
        key = self.space.key(genome)
        return self.feasible(genome) and key not in self.seen and key not in taken

    def _random_feasible(self, taken: set[str]) -> list[int]:
        fallback = None
        for _ in range(MAX_TRIES * 4):
            g = self.space.sample(self.rng)
            if self._novel(g, taken):
                return g
            if fallback is None and self.feasible(g):
                fallback = g
        return fallback if fallback is not None else self.space.min_genome()

    def _first_generation(self) -> list[list[int]]:
        out: list[list[int]] = []
        taken: set[str] = set()
        one_x = self.space.one_x()
        if self.config.seed_1x and self.feasible(one_x):
            out.append(one_x)
            taken.add(self.space.key(one_x))
        while len(out) < self.config.population:
            g = self._random_feasible(taken)
            out.append(g)
            taken.add(self.space.key(g))
        return out

    def _offspring(self, count: int, taken: set[str]) -> list[list[int]]:
        """`count` children of tournament-selected parents (uniform crossover, uniform-integer mutation),
        pushed away from seen codes by the space's mutation, or fresh samples when that fails."""
        tb = self.toolbox
        genomes = [m["genome"] for m in self.population]
        weights = [-math.inf if m["fitness"] is None else m["fitness"] for m in self.population]
        children: list[list[int]] = []
        while len(children) < count:
            child = None
            for _ in range(MAX_TRIES):
                with deap_random(self.rng):
                    a, b = tb.select(genomes, weights, 2)
                    if random.random() < self.config.cx_prob:
                        a, b = tb.mate(a, b)
                    a = tb.mutate(a)
                candidate = [int(v) for v in a]
                if self._novel(candidate, taken):
                    child = candidate
                    break
                # an unchanged or already-seen code: push it away with the space's own mutation
                candidate = self.space.mutate(candidate, self.rng)
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
        self.carried = sorted(self.population, key=lambda m: -math.inf if m["fitness"] is None else m["fitness"],
                              reverse=True)[: self.config.elite]

    def breed(self) -> list[Genome]:
        taken = {self.space.key(m["genome"]) for m in self.population}
        return self._offspring(self.config.population - len(self.carried), taken)

    def extra_state(self) -> dict:
        return {"population": self.population, "carried": self.carried, "seen": sorted(self.seen)}

    def load_extra_state(self, state: dict) -> None:
        self.population = [_member(m["genome"], m["fitness"]) for m in state["population"]]
        self.carried = [_member(m["genome"], m["fitness"]) for m in state["carried"]]
        self.seen = set(state["seen"])
