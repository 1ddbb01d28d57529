"""Random search: uniform samples from the space, the baseline every NAS method must beat."""

from __future__ import annotations

from typing import Any

from searchlab import registry
from searchlab.protocols import Genome, Result, Strategy
from searchlab.engine.seeding import make_rng, rng_from_state, rng_state


class RandomSearch(Strategy):
    """Asks `space.sample(rng)` forever; the run's budget decides when to stop."""

    def __init__(self, space: Any, seed: int):
        self.space = space
        self.rng = make_rng(seed)

    def ask(self, n: int) -> list[Genome]:
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, genome: Genome, result: Result) -> None:
        pass

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.rng = rng_from_state(state["rng"])


registry.register_strategy(
    "random", factory=lambda space, config, *, seed, objectives: RandomSearch(space, seed),
    help="random search: uniform samples from the space (baseline)")
