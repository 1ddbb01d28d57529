"""Registers the `sr` space (its strategy and evaluator come from searchlab.evolvers.sr_block_search)."""

from __future__ import annotations

from searchlab import registry
from searchlab.search_spaces.sr_blocks.config import SRSpaceConfig, make_space

registry.register_space(
    "sr", factory=make_space, config=SRSpaceConfig, default_strategy="esrn", default_evaluator="sr-proxy",
    help="super-resolution residual dense block chains (ESRN, Song et al. AAAI 2020)")
