"""FLOPs and parameters of a mask: counted by torch, or in closed form from the mask."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from searchlab.search_spaces.filter_masks.analysis import PruningPlan, kept_channels, trace_channels
from searchlab.search_spaces.filter_masks.encoding import Genome, bits_of


def measured_flops(model: nn.Module, example_input: torch.Tensor) -> float:
    """FLOPs (2 per multiply-accumulate) of one forward pass, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(example_input)
    return float(counter.get_total_flops())


def _module_sizes(model: nn.Module, plan: PruningPlan, bits: np.ndarray):
    """(name, module, kind, kept inputs, kept outputs) for every analysed module under a mask."""
    modules = dict(model.named_modules())
    for name, use in plan.uses.items():
        if use.kind == "fixed":
            continue
        mod = modules[name]
        k_in = int(kept_channels(plan, use.in_labels, bits).sum()) * use.in_rep
        if use.kind == "conv":
            k_out = int(kept_channels(plan, use.out_labels, bits).sum())
        elif use.kind == "linear":
            k_out = mod.out_features
        else:
            k_out = k_in
        yield name, mod, use, k_in, k_out


def analytic_flops(model: nn.Module, plan: PruningPlan, bits: np.ndarray) -> float:
    total = 0.0
    for _, mod, use, k_in, k_out in _module_sizes(model, plan, bits):
        if use.kind == "conv":
            total += 2.0 * k_out * k_in * math.prod(mod.kernel_size) * use.out_hw
        elif use.kind == "depthwise":
            total += 2.0 * k_out * math.prod(mod.kernel_size) * use.out_hw
        elif use.kind == "linear":
            total += 2.0 * k_out * k_in
    return total


def analyse(model: nn.Module, example_input: torch.Tensor, layers: list[str] | None = None) -> PruningPlan:
    """The pruning plan of `model` (`analysis.trace_channels`), with the FLOPs no mask changes counted in:
    torch's count of the whole network less the analytic count of its prunable part."""
    plan = trace_channels(model, example_input, layers)
    total = measured_flops(model, example_input[:1])
    plan.fixed_flops = total - analytic_flops(model, plan, np.ones(plan.n_bits, dtype=bool))
    return plan


def cost(model: nn.Module, plan: PruningPlan, genome: Genome) -> dict[str, float]:
    """Parameters and FLOPs (per image) of the network a mask leaves, computed without building it."""
    bits = bits_of(genome)
    params = plan.fixed_params
    for _, mod, use, k_in, k_out in _module_sizes(model, plan, bits):
        bias = getattr(mod, "bias", None)
        if use.kind == "conv":
            params += k_out * k_in * math.prod(mod.kernel_size) + (k_out if bias is not None else 0)
        elif use.kind == "depthwise":
            params += k_out * math.prod(mod.kernel_size) + (k_out if bias is not None else 0)
        elif use.kind == "bn":
            params += 2 * k_in if mod.affine else 0
        elif use.kind == "linear":
            params += k_out * k_in + (k_out if bias is not None else 0)
    return {"params": float(params), "flops": plan.fixed_flops + analytic_flops(model, plan, bits)}
