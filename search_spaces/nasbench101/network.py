"""The full NAS-Bench-101 network of a cell (via nasbench_pytorch), its parameters and FLOPs.

The network is the published one: a 3x3 conv stem, `num_stacks` stacks of `modules_per_stack`
cells with a 2x2 max-pool between stacks (channels doubling), global average pooling, a linear
classifier. FLOPs are multiply-accumulates of one 32x32 image, counted by torch's
`FlopCounterMode` on the meta device (no memory, no compute). Like the table's `flops` column they
count convolutions and the classifier plus two operations per batch-norm output element
(normalise, scale-and-shift); additions, ReLU and pooling count zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from searchlab.search_spaces.nasbench101 import spec as nb_spec


def build_network(genome: Any, num_classes: int = 10, stem_channels: int = 128, num_stacks: int = 3,
                  modules_per_stack: int = 3, in_channels: int = 3) -> torch.nn.Module:
    """The trainable torch network of a cell (validated and pruned first)."""
    from nasbench_pytorch.model import Network

    return Network(_model_spec(genome), num_labels=num_classes, in_channels=in_channels,
                   stem_out_channels=stem_channels, num_stacks=num_stacks,
                   num_modules_per_stack=modules_per_stack)


def _model_spec(genome: Any):
    from nasbench_pytorch.model import ModelSpec

    g = nb_spec.validate(genome)
    with torch.device("cpu"):  # the spec's matrix tensor is read with .numpy()
        return ModelSpec(np.asarray(g["matrix"], dtype=np.int64), list(g["ops"]))


def vertex_channels(genome: Any, in_channels: int, out_channels: int) -> list[int]:
    """Output channels of every vertex of the (pruned) cell, as the network allocates them."""
    from nasbench_pytorch.model.model import compute_vertex_channels

    g = nb_spec.validate(genome)
    return compute_vertex_channels(in_channels, out_channels, np.asarray(g["matrix"], dtype=np.int64))


def cell_channels(stem_channels: int = 128, num_stacks: int = 3, modules_per_stack: int = 3) -> list[tuple[int, int]]:
    """(in_channels, out_channels) of each cell of the network, in order (9 cells by default)."""
    out, cin, pairs = stem_channels, stem_channels, []
    for stack in range(num_stacks):
        if stack > 0:
            out *= 2
        for _ in range(modules_per_stack):
            pairs.append((cin, out))
            cin = out
    return pairs


def count_params(net: torch.nn.Module) -> int:
    """Trainable parameters, without nasbench_pytorch's one-scalar placeholders of identity vertices."""
    from nasbench_pytorch.model.model import Placeholder

    skip = {id(p) for m in net.modules() if isinstance(m, Placeholder) for p in m.parameters()}
    skip |= {id(m.dev_param) for m in net.modules() if hasattr(m, "dev_param")}
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad and id(p) not in skip))


def network_stats(genome: Any, num_classes: int = 10, stem_channels: int = 128, num_stacks: int = 3,
                  modules_per_stack: int = 3, image_size: int = 32) -> dict[str, float]:
    """{"params", "flops"} of the full network; flops are multiply-accumulates of one image."""
    from torch.utils.flop_counter import FlopCounterMode

    from nasbench_pytorch.model import Network

    model_spec = _model_spec(genome)
    with torch.device("meta"):
        net = Network(model_spec, num_labels=num_classes, stem_out_channels=stem_channels,
                      num_stacks=num_stacks, num_modules_per_stack=modules_per_stack)
        x = torch.empty(1, 3, image_size, image_size)
    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.native_batch_norm: _batch_norm_flops,
        torch.ops.aten.native_batch_norm.default: _batch_norm_flops})  # the overload stops decomposition
    with counter, torch.no_grad():
        net(x)
    # the counter reports 2 FLOPs per multiply-accumulate; batch norm is registered as 4 per element
    return {"params": float(count_params(net)), "flops": float(counter.get_total_flops() / 2)}


def _batch_norm_flops(input_shape, *args, out_shape=None, **kwargs) -> int:
    return 4 * int(np.prod(input_shape))
