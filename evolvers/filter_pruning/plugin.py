"""Registers the `prune-ga` strategy and the `masked-fitness` evaluator of the `prune` space."""

from __future__ import annotations

from searchlab import registry
from searchlab.evolvers.filter_pruning.evaluator import MaskedFitness
from searchlab.evolvers.filter_pruning.finalize import finalize
from searchlab.evolvers.filter_pruning.strategy import PruneGA, PruneGAConfig

registry.register_strategy(
    "prune-ga", config=PruneGAConfig, spaces=("prune",),
    factory=lambda space, config, *, seed, objectives: PruneGA(space, config, seed, objectives),
    help="generational GA with DEAP roulette/tournament selection, two-point crossover, segment/bit-flip mutation")
registry.register_evaluator(
    "masked-fitness", config=None, spaces=("prune",),
    factory=lambda space, config, ctx: MaskedFitness(space, ctx), finalize=finalize,
    help="accuracy of the masked network on held-out training images, traded against filters removed")
