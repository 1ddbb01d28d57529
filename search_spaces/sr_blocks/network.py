"""The SR network a genome builds: shallow features, the chain of used residual dense blocks (SRDB, GRDB,
CRDB, RDB), global feature fusion, PixelShuffle upsampler and the optional bicubic skip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from searchlab.search_spaces.sr_blocks.blocks import block_specs, used_blocks


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: interleave the channels of `groups` groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class DenseBlock(nn.Module):
    """One SRDB, GRDB, CRDB or RDB block (see the module docstring)."""

    def __init__(self, block: dict, cin: int, groups: int = 4) -> None:
        super().__init__()
        self.kind, self.groups = block["type"], groups
        self.residual = cin == int(block["out"])
        specs = block_specs(block, cin, groups)
        convs = [nn.Conv2d(s.cin, s.cout, s.k, padding=s.k // 2, groups=s.groups) for s in specs]
        self.layers = nn.ModuleList(convs[:-1])
        self.fuse = convs[-1]

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        step = 2 if self.kind == "SRDB" else 1
        for i in range(0, len(self.layers), step):
            h = torch.cat(feats, 1) if len(feats) > 1 else feats[0]
            if self.kind == "SRDB":
                y = F.relu(self.layers[i + 1](self.layers[i](h)))
            else:
                y = F.relu(self.layers[i](h))
                if self.kind == "GRDB":
                    y = channel_shuffle(y, self.groups)
            feats.append(y)
        return self.fuse(torch.cat(feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "CRDB":
            h, w = x.shape[-2:]
            padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
            y = F.pixel_shuffle(self._dense(F.avg_pool2d(padded, 2)), 2)[..., :h, :w]
        else:
            y = self._dense(x)
        return y + x if self.residual else y


class SRNet(nn.Module):
    """The backbone with a chain of blocks; input and output are images scaled to [-1, 1]."""

    def __init__(self, genome: dict, *, g0: int = 32, scale: int = 2, groups: int = 4, skip: str = "bicubic",
                 colors: int = 3) -> None:
        super().__init__()
        self.scale, self.skip = scale, skip
        self.sfe1 = nn.Conv2d(colors, g0, 3, padding=1)
        self.sfe2 = nn.Conv2d(g0, g0, 3, padding=1)
        blocks, cin, outs = [], g0, 0
        for block in used_blocks(genome):
            blocks.append(DenseBlock(block, cin, groups))
            cin = int(block["out"])
            outs += cin
        self.blocks = nn.ModuleList(blocks)
        self.gff1 = nn.Conv2d(outs, g0, 1)
        self.gff3 = nn.Conv2d(g0, g0, 3, padding=1)
        self.up = nn.Conv2d(g0, colors * scale * scale, 3, padding=1)
        if skip == "bicubic":  # start as exactly bicubic upscaling; training learns the residual
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from searchlab.training.imresize import torch_imresize

        f1 = self.sfe1(x)
        f = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            f = block(f)
            outs.append(f)
        f = self.gff3(self.gff1(torch.cat(outs, 1))) + f1
        y = F.pixel_shuffle(self.up(f), self.scale)
        if self.skip == "bicubic":
            y = y + torch_imresize(x, float(self.scale), antialias=False)
        return y
