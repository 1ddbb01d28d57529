"""Regularized (aging) evolution, Real et al., AAAI 2019.

Start with P random genomes; then repeatedly sample S members of the population uniformly, mutate
the best of the sample, add the child and drop the oldest member. Ageing out the oldest (rather
than the worst) keeps the search from clinging to lucky early evaluations.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from searchlab import registry
from searchlab.errors import ConfigError
from searchlab.objectives import score
from searchlab.options import opt
from searchlab.protocols import Genome, Result, Strategy
from searchlab.engine.seeding import make_rng, rng_from_state, rng_state


@dataclass(frozen=True)
class AgingEvolutionConfig:
    """Regularized evolution options"""

    population: int = opt(50, help="population size P (the first P candidates are random samples)")
    sample_size: int = opt(10, help="tournament sample size S (the best of S random members is mutated)")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError("--population must be at least 2")
        if not 1 <= self.sample_size <= self.population:
            raise ConfigError(f"--sample-size must be between 1 and --population ({self.population})")


class AgingEvolution(Strategy):
    def __init__(self, space: Any, config: AgingEvolutionConfig, seed: int, objectives: dict[str, str]):
        self.space = space
        self.config = config
        self.objectives = objectives
        self.rng = make_rng(seed)
        self.asked = 0
        self.population: deque[tuple[Genome, float]] = deque()

    def ask(self, n: int) -> list[Genome]:
        out = []
        for _ in range(n):
            if self.asked < self.config.population or not self.population:
                out.append(self.space.sample(self.rng))
            else:
                members = list(self.population)
                picks = self.rng.choice(len(members), size=min(self.config.sample_size, len(members)), replace=False)
                parent = max((members[i] for i in sorted(picks)), key=lambda m: m[1])[0]
                out.append(self.space.mutate(parent, self.rng))
            self.asked += 1
        return out

    def tell(self, genome: Genome, result: Result) -> None:
        self.population.append((genome, score(result, self.objectives)))
        if len(self.population) > self.config.population:
            self.population.popleft()

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.rng), "asked": self.asked,
                "population": [[g, f if f != float("-inf") else None] for g, f in self.population]}

    def load_state_dict(self, state: dict) -> None:
        self.rng = rng_from_state(state["rng"])
        self.asked = int(state["asked"])
        self.population = deque((g, float("-inf") if f is None else float(f)) for g, f in state["population"])


registry.register_strategy(
    "evolution", config=AgingEvolutionConfig,
    factory=lambda space, config, *, seed, objectives: AgingEvolution(space, config, seed, objectives),
    help="regularized (aging) evolution, Real et al. 2019 (baseline)")
