"""Registers the `cyclegan` space (its strategy and evaluator come from searchlab.evolvers.gan_coevolution)."""

from __future__ import annotations

from searchlab import registry
from searchlab.search_spaces.cyclegan.space import CycleganConfig, CycleganSpace
from searchlab.search_spaces.final_step import by_evaluator

registry.register_space(
    "cyclegan", factory=lambda config, ctx: CycleganSpace.from_config(config), config=CycleganConfig,
    default_strategy="coevolution", default_evaluator="gan-fitness", finalize=by_evaluator,
    help="channel masks of both CycleGAN generators (co-evolutionary compression)")
