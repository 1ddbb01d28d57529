"""Physical pruning: cut the removed filters out of a copy of the network."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

from searchlab.search_spaces.filter_masks.analysis import PruningPlan, kept_channels
from searchlab.search_spaces.filter_masks.encoding import Genome, bits_of


def _sizes_pruned_bn(mod: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = copy.deepcopy(mod)
    new.num_features = int(keep.numel())
    for pname in ("weight", "bias"):
        p = getattr(mod, pname)
        if p is not None:
            setattr(new, pname, nn.Parameter(p.detach()[keep].clone(), requires_grad=p.requires_grad))
    for bname in ("running_mean", "running_var"):
        b = getattr(mod, bname)
        if b is not None:
            setattr(new, bname, b[keep].clone())
    return new


def prune_model(model: nn.Module, plan: PruningPlan, genome: Genome) -> nn.Module:
    """A copy of `model` with the removed filters (and the input channels that read them) cut out."""
    bits = bits_of(genome)
    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    for name, use in plan.uses.items():
        if use.kind == "fixed":
            continue
        mod = modules[name]
        keep_in = torch.from_numpy(np.repeat(kept_channels(plan, use.in_labels, bits), use.in_rep)).nonzero().flatten()
        if use.kind == "conv":
            keep_out = torch.from_numpy(kept_channels(plan, use.out_labels, bits)).nonzero().flatten()
            w = mod.weight.detach()[keep_out][:, keep_in].clone()
            mod.weight = nn.Parameter(w, requires_grad=mod.weight.requires_grad)
            if mod.bias is not None:
                mod.bias = nn.Parameter(mod.bias.detach()[keep_out].clone(), requires_grad=mod.bias.requires_grad)
            mod.in_channels, mod.out_channels = int(keep_in.numel()), int(keep_out.numel())
        elif use.kind == "depthwise":
            mod.weight = nn.Parameter(mod.weight.detach()[keep_in].clone(), requires_grad=mod.weight.requires_grad)
            if mod.bias is not None:
                mod.bias = nn.Parameter(mod.bias.detach()[keep_in].clone(), requires_grad=mod.bias.requires_grad)
            mod.in_channels = mod.out_channels = mod.groups = int(keep_in.numel())
        elif use.kind == "bn":
            parent_name, _, attr = name.rpartition(".")
            setattr(modules[parent_name] if parent_name else pruned, attr, _sizes_pruned_bn(mod, keep_in))
        elif use.kind == "linear":
            mod.weight = nn.Parameter(mod.weight.detach()[:, keep_in].clone(), requires_grad=mod.weight.requires_grad)
            mod.in_features = int(keep_in.numel())
    return pruned
