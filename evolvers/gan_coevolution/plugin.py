"""Registers the `coevolution` strategy and the `gan-fitness` evaluator of the `cyclegan` space."""

from __future__ import annotations

from searchlab import registry
from searchlab.evolvers.gan_coevolution.evaluator import GanFitnessConfig, make_evaluator
from searchlab.evolvers.gan_coevolution.finalize import finalize
from searchlab.evolvers.gan_coevolution.strategy import CoevolutionConfig, CoevolutionStrategy

registry.register_strategy(
    "coevolution", factory=lambda space, config, *, seed, objectives: CoevolutionStrategy(space, config, seed=seed),
    config=CoevolutionConfig, spaces=("cyclegan",),
    help="two mask populations (G_A, G_B) evolved in turn with DEAP selection/crossover/mutation")
registry.register_evaluator(
    "gan-fitness", factory=make_evaluator, finalize=finalize, config=GanFitnessConfig, spaces=("cyclegan",),
    help="C / (discriminator-aware fidelity + gamma * cycle L1) + mu * pruned channels")
