"""Registers the `esrn` strategy and the `sr-proxy` evaluator of the `sr` space."""

from __future__ import annotations

from searchlab import registry
from searchlab.evolvers.sr_block_search.evaluator import SRProxyConfig, SRProxyEvaluator
from searchlab.evolvers.sr_block_search.finalize import finalize
from searchlab.evolvers.sr_block_search.strategy import ESRNConfig, ESRNStrategy

registry.register_strategy(
    "esrn", config=ESRNConfig, spaces=("sr",),
    factory=lambda space, config, *, seed, objectives: ESRNStrategy(space, config, seed, objectives),
    help="generational GA with block credits (ESRN)")
registry.register_evaluator(
    "sr-proxy", config=SRProxyConfig, spaces=("sr",),
    factory=lambda space, config, ctx: SRProxyEvaluator(space, config, ctx), finalize=finalize,
    help="short L1/Adam training on HR crops, PSNR on held-out images")
