"""cell-ga: a generational genetic algorithm over NAS-Bench-101 cells, written as a plug-in package.

The worked example of docs/extending.md. The search holds only what is particular to it: the first
generation, the fitness kept per result, and breeding (tournament selection, uniform crossover of the
ops of same-size cells, then the space's own mutation). searchlab's GA core does the ask/tell order,
generations and JSON state. Load it with SEARCHLAB_PLUGINS=cell_ga (or a `searchlab.plugins` entry
point of an installed package) and run:

    searchlab search nasbench101 --strategy cell-ga --population 20 --generations 10 --run runs/cell-ga
"""

from __future__ import annotations

from dataclasses import dataclass

from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab import registry
from searchlab.objectives import sign
from searchlab.options import opt


@dataclass(frozen=True)
class CellGAConfig:
    """genetic algorithm over cells"""

    population: int = opt(20, help="cells per generation")
    generations: int = opt(10, help="generations, the random first one included")
    elite: int = opt(2, help="best cells carried unchanged into the next generation")
    tournament_size: int = opt(3, help="cells per selection tournament")
    cx_prob: float = opt(0.5, help="probability that a child of two same-size cells mixes their ops")

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, elite=self.elite, tournament_size=self.tournament_size,
                         cx_prob=self.cx_prob)


class CellGA(GenerationalGA):
    """Elitist generational GA; the core carries the elites, picks parents and keeps the history."""

    label = "cell-ga"

    def __init__(self, space, config: CellGAConfig, seed: int, objectives: dict[str, str]) -> None:
        super().__init__(space, seed, config.generations)
        self.config = config
        self.objective, mode = next(iter(objectives.items()))
        self.sign = sign(mode)
        self.carried: list[dict] = []  # {"genome", "fitness"}: the elites, not evaluated again
        self.pending = [space.sample(self.rng) for _ in range(config.population)]

    def score(self, genome, result) -> float | None:
        return self.sign * float(result.objectives[self.objective]) if result.ok else None

    def end_generation(self) -> None:
        self.record(self.carried + self.members())

    def breed(self) -> list:
        cfg, rng = self.config, self.rng
        scored = self.carried + self.members()
        self.carried = self.elites(scored, cfg.elite)
        cells, fitness = [m["genome"] for m in scored], [m["fitness"] for m in scored]
        children = []
        while len(children) < cfg.population - len(self.carried):
            a, b = self.parents(cells, fitness, 2, operators.sel_tournament, tournsize=cfg.tournament_size)
            if len(a["ops"]) == len(b["ops"]) and rng.random() < cfg.cx_prob:
                with deap_random(rng):
                    ops, _ = operators.cx_uniform(a["ops"], b["ops"], 0.5)
                a = {"matrix": a["matrix"], "ops": ops}
            children.append(self.space.mutate(a, rng))
        return children

    def extra_state(self) -> dict:
        return {"elites": self.carried}

    def load_extra_state(self, state: dict) -> None:
        self.carried = [dict(m) for m in state["elites"]]


registry.register_strategy(
    "cell-ga", config=CellGAConfig, spaces=("nasbench101",),
    factory=lambda space, config, *, seed, objectives: CellGA(space, config, seed, objectives),
    help="generational GA over cells: tournament selection, op crossover, the space's mutation (example plug-in)")
