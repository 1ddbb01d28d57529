"""`FilterMaskSpace`: the search space of filter masks of one analysed network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from searchlab.search_spaces.filter_masks.analysis import PruningPlan
from searchlab.search_spaces.filter_masks.costs import cost
from searchlab.search_spaces.filter_masks.encoding import Genome, bits_of, genome_of
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.size_target import SizeBudget, SizeTarget, flag, human


@dataclass
class FilterMaskSpace:
    """Binary masks over the prunable filter groups of a trained network (1 = keep the filter)."""

    model: nn.Module
    plan: PruningPlan
    name: str = "prune"
    budget: SizeBudget | None = None  # the hard size budget (`set_target`)

    def __post_init__(self) -> None:
        if self.plan.n_bits == 0:
            raise ConfigError("the model has no prunable filters with these layers; pass --layers with the names "
                              f"of convolutions to prune (convolutions: {', '.join(self.plan.convs) or 'none'})")
        self._layer_sets = [np.array(sorted({b for b in bits if b >= 0})) for c, bits in self.plan.layer_bits.items()
                            if bits and all(b >= 0 for b in bits)]
        self._full_cost = cost(self.model, self.plan, "1" * self.plan.n_bits)

    @property
    def n_bits(self) -> int:
        return self.plan.n_bits

    def smallest(self) -> Genome:
        """The smallest mask the layers allow: one filter kept in every layer."""
        bits = np.zeros(self.n_bits, dtype=bool)
        for layer in self._layer_sets:
            if not bits[layer].any():
                bits[layer[0]] = True
        return genome_of(bits)

    def set_target(self, target: SizeTarget | None) -> None:
        """Resolve a `--max-flops` / `--max-params` target against the unpruned network; refuse one that the
        smallest network these layers allow cannot meet."""
        if target is None:
            self.budget = None
            return
        reference = self._full_cost[target.measure]
        budget = SizeBudget(target.measure, target.limit(reference), reference)
        low = cost(self.model, self.plan, self.smallest())[target.measure]
        if not budget.feasible(low):
            raise ConfigError(f"{flag(target.measure)} {target.text} cannot be met: with these layers the smallest "
                              f"network keeps {human(low)} {target.measure} ({low / reference:.3g} of the original); "
                              f"raise {flag(target.measure)} to at least {math.ceil(1000 * low / reference) / 1000:g} "
                              "or prune more layers (--layers)")
        self.budget = budget

    def size(self, genome: Genome) -> float:
        """The genome's size in the budget's measure."""
        return cost(self.model, self.plan, genome)[self.budget.measure if self.budget else "flops"]

    def drop_filter(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        """The mask with one random kept filter group less (every layer keeps one); None when none can go."""
        bits = bits_of(genome).copy()
        for i in rng.permutation(np.flatnonzero(bits)):
            bits[i] = False
            if all(bits[layer].any() for layer in self._layer_sets):
                return genome_of(bits)
            bits[i] = True
        return None

    def add_filter(self, genome: Genome, rng: np.random.Generator) -> Genome | None:
        """The mask with one random pruned filter group back; None when nothing is pruned."""
        off = np.flatnonzero(~bits_of(genome))
        if len(off) == 0:
            return None
        bits = bits_of(genome).copy()
        bits[rng.choice(off)] = True
        return genome_of(bits)

    def repair(self, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Turn on one random filter in every layer that lost all of its filters."""
        bits = np.asarray(bits, dtype=bool).copy()
        for layer in self._layer_sets:
            if not bits[layer].any():
                bits[rng.choice(layer)] = True
        return bits

    def sample(self, rng: np.random.Generator) -> Genome:
        rate = rng.uniform(0.3, 1.0)
        return genome_of(self.repair(rng.random(self.n_bits) < rate, rng))

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        bits = bits_of(self.validate(genome)).copy()
        flip = rng.random(self.n_bits) < 1.0 / self.n_bits
        if not flip.any():
            flip[rng.integers(self.n_bits)] = True
        return genome_of(self.repair(bits ^ flip, rng))

    def validate(self, genome: Genome) -> Genome:
        if not isinstance(genome, str) or len(genome) != self.n_bits or set(genome) - {"0", "1"}:
            raise InvalidArchitecture(f"a mask must be a string of {self.n_bits} '0'/'1' characters")
        bits = bits_of(genome)
        for layer in self._layer_sets:
            if not bits[layer].any():
                raise InvalidArchitecture("a mask must keep at least one filter in every layer")
        return genome

    def key(self, genome: Genome) -> str:
        return self.validate(genome)

    def kept_per_layer(self, genome: Genome) -> dict[str, list[int]]:
        """conv name -> [kept filters, original filters], for every dense convolution."""
        bits = np.append(bits_of(genome), True)
        return {c: [int(bits[np.array(b)].sum()), len(b)] for c, b in self.plan.layer_bits.items()}

    def describe(self, genome: Genome) -> dict:
        c = cost(self.model, self.plan, self.validate(genome))
        bits = bits_of(genome)
        return {"params": c["params"], "flops": c["flops"], "kept_bits": int(bits.sum()), "bits": self.n_bits,
                "flops_ratio": self._full_cost["flops"] / c["flops"], "params_ratio": self._full_cost["params"] / c["params"],
                "kept_per_layer": self.kept_per_layer(genome)}

    @property
    def full_cost(self) -> dict[str, float]:
        return dict(self._full_cost)
