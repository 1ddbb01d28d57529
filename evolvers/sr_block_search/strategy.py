"""The `esrn` strategy: a generational GA with block credits on the shared GA core (roulette on fitness,
segment crossover of slot lists, credit-guided mutation, repair into the parameter range; with
`--max-params` the core's budget rule: one block gene a step down while over, a step up while far under)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from searchlab.errors import ConfigError
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab.options import opt
from searchlab.protocols import Genome, Result
from searchlab.search_spaces.sr_blocks import BLOCK_TYPES, SRBlockSpace, mut_blocks, used_blocks
from searchlab.search_spaces.sr_blocks.mutation import step_block


@dataclass(frozen=True)
class ESRNConfig:
    """ESRN genetic algorithm"""

    population: int = opt(8, help="individuals per generation")
    generations: int = opt(20, help="generations (the first is random)")
    elite: int = opt(2, help="best individuals copied unchanged into the next generation", aliases={"elites": None})
    cx_prob: float = opt(0.5, help="probability that two parents swap a segment of slots", aliases={"crossover": None})
    mut_prob: float = opt(0.1, help="probability that each gene of each slot mutates", aliases={"mutation_rate": None})
    credits: bool = opt(True, help="guide mutation by block credits (--no-credits: uniform mutation)")
    credit_strength: float = opt(2.0, help="beta: how strongly credits bias mutation")
    credit_rate: float = opt(0.5, help="a: weight of the newest generation in the running credits")

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, elite=self.elite, cx_prob=self.cx_prob,
                         mut_prob=self.mut_prob)
        if self.mut_prob == 0:
            raise ConfigError("--mut-prob must be above 0: mutation is what repairs a network into the range")
        if self.credit_strength < 0 or not 0 < self.credit_rate <= 1:
            raise ConfigError("--credit-strength must be >= 0 and --credit-rate in (0, 1]")


def psnr_weights(fitness: list[float]) -> list[float]:
    """Roulette weights from PSNRs, which differ by fractions of a dB: fitness above the generation's worst
    plus a tenth of the spread (the worst keeps a small chance)."""
    lo, hi = min(fitness), max(fitness)
    floor = 0.1 * (hi - lo) + 1e-6
    return [f - lo + floor for f in fitness]


def cx_segment(a: dict, b: dict, rng: np.random.Generator) -> tuple[dict, dict]:
    """Segment crossover of two block chains: swap the slots between two cut points."""
    x, y = [dict(s) for s in a["blocks"]], [dict(s) for s in b["blocks"]]
    if len(x) < 2:
        return {"blocks": x}, {"blocks": y}
    with deap_random(rng):
        x, y = operators.cx_two_point(x, y)
    return {"blocks": x}, {"blocks": y}


def block_credits(population: list[dict], fitness: list[float], slots: int) -> tuple[dict[str, float], list[float | None]]:
    """This generation's credit of each block type and of each slot being used (see module docstring)."""
    f = np.asarray(fitness, dtype=np.float64)
    z = (f - f.mean()) / (f.std() + 1e-8)
    types: dict[str, float] = {}
    for kind in BLOCK_TYPES:
        counts = np.array([sum(1 for b in used_blocks(g) if b["type"] == kind) for g in population], dtype=np.float64)
        if counts.sum() > 0:
            types[kind] = float((z * counts).sum() / counts.sum())
    positions: list[float | None] = []
    for p in range(slots):
        used = np.array([g["blocks"][p]["used"] for g in population], dtype=bool)
        positions.append(float(z[used].mean() - z[~used].mean()) if used.any() and (~used).any() else None)
    return types, positions


class ESRNStrategy(GenerationalGA):
    """Generational GA over SR block chains with block credits; elites are carried, not asked again."""

    label = "esrn"

    def __init__(self, space: SRBlockSpace, config: ESRNConfig, seed: int, objectives: dict[str, str] | None = None):
        super().__init__(space, seed, config.generations, budget=getattr(space, "budget", None))
        self.config = config
        self.carried: list[dict] = []    # {"genome", "fitness"} carried into the current generation
        self.type_credit = {k: 0.0 for k in BLOCK_TYPES}
        self.use_credit = [0.0] * space.slots
        self.toolbox = self._toolbox()
        self.pending = [self.fit_budget(space.sample(self.rng)) for _ in range(config.population)]

    def _toolbox(self):
        from deap import base

        toolbox = base.Toolbox()
        toolbox.register("select", operators.sel_roulette)
        toolbox.register("mate", cx_segment)
        toolbox.register("mutate", self._mutate)
        return toolbox

    # mutation probabilities -------------------------------------------------------------------------
    def type_probs(self) -> np.ndarray | None:
        if not self.config.credits:
            return None
        c = self.config.credit_strength * np.array([self.type_credit[k] for k in BLOCK_TYPES])
        e = np.exp(c - c.max())
        return e / e.sum()

    def use_probs(self) -> np.ndarray | None:
        if not self.config.credits:
            return None
        return 1.0 / (1.0 + np.exp(-self.config.credit_strength * np.asarray(self.use_credit)))

    def _mutate(self, genome: dict, rng: np.random.Generator) -> dict:
        return mut_blocks(genome, rng, rate=self.config.mut_prob, type_probs=self.type_probs(),
                          use_probs=self.use_probs())

    # the budget's measure and unit steps (with --max-params)
    def size(self, genome: Genome) -> float:
        return float(self.space.params(genome))

    def shrink(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        return step_block(genome, rng, -1, self.space.min_blocks)

    def grow(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        return step_block(genome, rng, +1, self.space.min_blocks)

    # the GA hooks -----------------------------------------------------------------------------------
    def score(self, genome: Genome, result: Result) -> float | None:
        return float(result.objectives["psnr"]) if result.ok and "psnr" in result.objectives else None

    def _scored(self) -> list[dict]:
        """The generation's members with a PSNR: the carried elites, then the told children."""
        return [m for m in self.carried + self.members() if m["fitness"] is not None]

    def end_generation(self) -> None:
        ok = self._scored()
        if len(ok) >= 2:
            self._update_credits([m["genome"] for m in ok], [m["fitness"] for m in ok])
        self.record(ok, type_credit=dict(self.type_credit))

    def breed(self) -> list[Genome]:
        cfg, tb, rng = self.config, self.toolbox, self.rng
        ok = self._scored()
        self.carried = self.elites(ok, cfg.elite)
        children: list[dict] = []
        n_children = cfg.population - len(self.carried)
        while len(children) < n_children:
            if len(ok) >= 2:
                a, b = self.parents([m["genome"] for m in ok], [m["fitness"] for m in ok], 2, tb.select, psnr_weights)
            else:  # nothing (or one) succeeded: restart from fresh samples
                a, b = self.space.sample(rng), self.space.sample(rng)
            if rng.random() < cfg.cx_prob:
                a, b = tb.mate(a, b, rng)
            for child in (a, b):
                if len(children) < n_children:
                    child = tb.mutate(child, rng)
                    children.append(self.fit_budget(self.space.repair(child, rng, self._mutate)))
        return children

    def _update_credits(self, genomes: list[dict], fitness: list[float]) -> None:
        a = self.config.credit_rate
        types, positions = block_credits(genomes, fitness, self.space.slots)
        for k, c in types.items():
            self.type_credit[k] = (1 - a) * self.type_credit[k] + a * c
        for p, c in enumerate(positions):
            if c is not None:
                self.use_credit[p] = (1 - a) * self.use_credit[p] + a * c

    def extra_state(self) -> dict:
        return {"elites": self.carried, "type_credit": self.type_credit, "use_credit": self.use_credit}

    def load_extra_state(self, state: dict) -> None:
        state = json.loads(json.dumps(state))
        self.carried = state["elites"]
        self.type_credit = {k: float(state["type_credit"].get(k, 0.0)) for k in BLOCK_TYPES}
        self.use_credit = [float(c) for c in state["use_credit"]]
