"""Registers the `binary-ga` strategy and the `binary-train` evaluator of the `binary` space."""

from __future__ import annotations

from searchlab import registry
from searchlab.evolvers.binary_channel_search.evaluator import BinaryTrainConfig, BinaryTrainEvaluator
from searchlab.evolvers.binary_channel_search.finalize import finalize
from searchlab.evolvers.binary_channel_search.strategy import BinaryChannelGA, BinaryGAConfig

registry.register_strategy(
    "binary-ga", config=BinaryGAConfig, spaces=("binary",),
    factory=lambda space, config, *, seed, objectives: BinaryChannelGA(space, config, seed),
    help="DEAP genetic algorithm with elitism; fitness = accuracy - lam * cost ratio under a hard budget")
registry.register_evaluator(
    "binary-train", config=BinaryTrainConfig, spaces=("binary",),
    factory=lambda space, config, ctx: BinaryTrainEvaluator(space, config, ctx), finalize=finalize,
    help="short training on the shared trainer, accuracy on a held-out split")
