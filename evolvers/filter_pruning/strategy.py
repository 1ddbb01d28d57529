"""The `prune-ga` strategy: a generational GA over filter masks (DEAP selection, two-point crossover,
segment/bit-flip mutation, elitism) on the shared GA core."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab.objectives import sign
from searchlab.options import opt
from searchlab.protocols import Result
from searchlab.search_spaces.filter_masks import FilterMaskSpace, Genome, bits_of, genome_of


@dataclass(frozen=True)
class PruneGAConfig:
    """Genetic algorithm (DEAP operators)"""

    population: int = opt(32, help="individuals per generation (the first generation holds the unpruned network)")
    generations: int = opt(30, help="generations to evolve, the first included")
    selection: str = opt("roulette", help="parent selection", choices=("roulette", "tournament"))
    tournament_size: int = opt(3, help="contestants per tournament (--selection tournament)")
    cx_prob: float = opt(0.6, help="probability that a pair of parents is recombined by two-point crossover")
    mut_prob: float = opt(0.4, help="probability that a child is mutated")
    segment_prob: float = opt(0.3, help="share of mutations that flip a whole segment (the rest flip single bits)")
    bit_prob: float = opt(0.0, help="per-bit flip probability of bit-flip mutation (0: 1 / genome length)")
    elite: int = opt(2, help="best individuals copied unchanged into the next generation")

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, elite=self.elite, tournament_size=self.tournament_size,
                         cx_prob=self.cx_prob, mut_prob=self.mut_prob, segment_prob=self.segment_prob,
                         bit_prob=self.bit_prob)


class PruneGA(GenerationalGA):
    """A generational GA over filter masks: selection, two-point crossover, run/bit-flip mutation, elitism.

    The first generation holds the unpruned network and random masks; each next one keeps the `elite`
    best masks (asked again; the run store answers them) and breeds the rest. Under a size budget every
    mask, the unpruned one included, is repaired to it by the GA core's rule.
    """

    label = "prune-ga"

    def __init__(self, space: FilterMaskSpace, config: PruneGAConfig, seed: int, objectives: dict[str, str]):
        super().__init__(space, seed, config.generations, budget=getattr(space, "budget", None))
        self.config = config
        self.objective, mode = next(iter(objectives.items())) if objectives else ("fitness", "max")
        self.sign = sign(mode)
        self.toolbox = self._toolbox()
        first = ["1" * space.n_bits] + [space.sample(self.rng) for _ in range(config.population - 1)]
        self.pending = [self.fit_budget(g) for g in first]

    def _toolbox(self):
        from deap import base

        cfg = self.config
        toolbox = base.Toolbox()
        if cfg.selection == "tournament":
            toolbox.register("select", operators.sel_tournament, tournsize=cfg.tournament_size)
        else:
            toolbox.register("select", operators.sel_roulette)
        toolbox.register("mate", operators.cx_two_point)
        toolbox.register("mutate_bits", operators.mut_flip_bit, indpb=cfg.bit_prob or 1.0 / self.space.n_bits)
        toolbox.register("mutate_run", operators.mut_flip_run)
        return toolbox

    # the budget's measure and unit steps (the space's)
    def size(self, genome: Genome) -> float:
        return self.space.size(genome)

    def shrink(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        return self.space.drop_filter(genome, rng)

    def grow(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        return self.space.add_filter(genome, rng)

    def score(self, genome: Genome, result: Result) -> float | None:
        if not result.ok or self.objective not in result.objectives:
            return None
        return max(0.0, self.sign * float(result.objectives[self.objective]))

    def end_generation(self) -> None:
        self.record(self.members())

    def breed(self) -> list[Genome]:
        cfg, rng, tb = self.config, self.rng, self.toolbox
        k = cfg.population - cfg.elite
        pool = [[int(b) for b in bits_of(g)] for g in self.pending]
        parents = self.parents(pool, self.scores, k + (k % 2), tb.select)
        kids = [list(p) for p in parents]
        for i in range(0, len(kids) - 1, 2):
            if rng.random() < cfg.cx_prob and len(kids[i]) >= 2:
                with deap_random(rng):
                    kids[i], kids[i + 1] = tb.mate(kids[i], kids[i + 1])
        children = []
        for kid in kids[:k]:
            if rng.random() < cfg.mut_prob:
                if rng.random() < cfg.segment_prob:
                    kid = tb.mutate_run(kid, rng)
                else:
                    with deap_random(rng):
                        kid = tb.mutate_bits(kid)
            children.append(self.fit_budget(genome_of(self.space.repair(np.array(kid, dtype=bool), rng))))
        return [m["genome"] for m in self.elites(self.members(), cfg.elite)] + children
