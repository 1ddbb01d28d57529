"""Registers the `cyclegan` space (its strategy and evaluator come from searchlab.evolvers.gan_coevolution)."""

from __future__ import annotations

from searchlab import registry
from searchlab.search_spaces.cyclegan.space import CycleganConfig, CycleganSpace

registry.register_space(
    "cyclegan", factory=lambda config, ctx: CycleganSpace.from_config(config), config=CycleganConfig,
    default_strategy="coevolution", default_evaluator="gan-fitness",
    help="channel masks of both CycleGAN generators (co-evolutionary compression)")
