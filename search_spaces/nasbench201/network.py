"""The network a NAS-Bench-201 cell describes: the benchmark's macro skeleton around the cell.

stem (3x3 conv, C channels, BN) -> N cells -> residual reduction block (C -> 2C, stride 2) -> N cells
-> residual reduction block (2C -> 4C) -> N cells -> BN, ReLU, global average pool, linear. The
benchmark trains C = 16, N = 5. Inside a cell, node j sums its incoming edges; `nor_conv_KxK` is
ReLU -> KxK conv -> BN, `avg_pool_3x3` a 3x3 average pool (padding not counted), `skip_connect` the
identity and `none` nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from searchlab.search_spaces.nasbench201 import spec


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


def edge_op(name: str, channels: int) -> nn.Module | None:
    """The module of one edge (None for `none`, which adds nothing)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return ReLUConvBN(channels, channels, 1 if name == "nor_conv_1x1" else 3)


class Cell(nn.Module):
    """Nodes 1..3 each sum an operation on every earlier node; node 3 is the output."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = list(spec.EDGES)
        self.ops = nn.ModuleList([edge_op(op, channels) or nn.Identity() for op in ops])
        self.live = [op != "none" for op in ops]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.ops[e](nodes[i]) for e, (to, i) in enumerate(self.edges) if to == j and self.live[e]]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's reduction block: two ReLU-conv-BN (the first with stride 2) plus an avg-pool + 1x1
    conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


class NasBench201Network(nn.Module):
    def __init__(self, arch: str, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                 in_channels: int = 3) -> None:
        super().__init__()
        ops = spec.parse(spec.validate(arch))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(channels)]
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers += [Cell(ops, c) for _ in range(cells_per_stage)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
