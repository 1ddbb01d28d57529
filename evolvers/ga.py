"""The generational genetic algorithm under the compression searches.

`GenerationalGA` does the ask/tell bookkeeping that every generational search shares. It hands out a
generation's genomes in order and takes their results in the same order (anything else is a
`ProtocolError`). When the last result is told, it closes the generation and breeds the next. Its
state is plain JSON.

A search subclasses it and supplies three hooks:
- `score(genome, result)`: the fitness the search keeps for a result (None for a failure);
- `end_generation()`: what to keep of the generation just told (elites, history, credits);
- `breed()`: the next generation's genomes to evaluate.
It breeds with the plain operators of `evolvers/operators.py`, registered in a DEAP toolbox.
"""

from __future__ import annotations

import copy
from typing import Any

from searchlab.protocols import Genome, ProtocolError, Result, Strategy
from searchlab.seeding import make_rng, rng_from_state, rng_state


class GenerationalGA(Strategy):
    """Ask/tell over generations: `pending` holds the current generation's genomes (in ask order), `scores`
    the fitness of those told so far; `generation` counts closed generations, `generations` ends the run."""

    label = "GA"  # names the search in protocol errors

    def __init__(self, space: Any, seed: int, generations: int) -> None:
        self.space = space
        self.rng = make_rng(seed)
        self.generations = generations
        self.generation = 0
        self.pending: list[Genome] = []
        self.scores: list[float | None] = []
        self.asked = 0
        self.history: list[dict] = []

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
                **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng = rng_from_state(state["rng"])
        self.generation = int(state["generation"])
        self.pending = copy.deepcopy(list(state["pending"]))
        self.scores = [None if f is None else float(f) for f in state["scores"]]
        self.asked = int(state["asked"])
        self.history = copy.deepcopy(list(state["history"]))
        self.load_extra_state(state)
