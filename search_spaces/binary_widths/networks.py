"""The two searchable binary networks (VGG-Small and a CIFAR ResNet-18) built from per-layer width ratios,
and the named presets (the 1x binary, full-precision and published searched codes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.search_spaces.binary_widths.layers import BinaryConv2d


NETS = ("vgg-small", "resnet18")


DEFAULT_RATIOS = [0.5, 1.0, 2.0, 3.0, 4.0]


VGG_BASE = (128, 128, 256, 256, 512, 512)


RESNET_STAGES = (64, 128, 256, 512)


# Published searched codes for VGG-Small (Shen et al., Table 1).
PRESETS: dict[str, dict] = {
    "binary-1x": {"nets": NETS, "ratios": None, "binary": True,
                  "help": "the plain binary network, every ratio 1"},
    "full-precision": {"nets": NETS, "ratios": None, "binary": False,
                       "help": "the full-precision network, every ratio 1"},
    "vgg-auto-a": {"nets": ("vgg-small",), "ratios": [0.5, 2, 1, 1, 1, 0.5], "binary": True,
                   "help": "published searched code VGG-Auto-A"},
    "vgg-auto-b": {"nets": ("vgg-small",), "ratios": [2, 2, 4, 2, 4, 0.5], "binary": True,
                   "help": "published searched code VGG-Auto-B"},
}


def _conv3x3(cin: int, cout: int, stride: int, binary: bool, act: str) -> nn.Conv2d:
    if binary:
        return BinaryConv2d(cin, cout, 3, stride=stride, padding=1, act=act)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _width(base: int, ratio: float, scale: float) -> int:
    return max(1, int(round(base * ratio * scale)))


class VGGSmall(nn.Module):
    """VGG-Small for 32x32 inputs: six 3x3 convs (pool after 2nd, 4th, 6th) and one linear layer.

    The first conv and the classifier stay full precision; the other five convs are binary when
    `binary`. Binary layers binarise their own input, so no ReLU sits between them.
    """

    def __init__(self, widths: list[int], num_classes: int = 10, binary: bool = True, act: str = "sign",
                 image_size: int = 32) -> None:
        super().__init__()
        if len(widths) != 6:
            raise InvalidArchitecture(f"VGG-Small needs 6 widths, got {len(widths)}")
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=False) if i == 0
                          else _conv3x3(cin, cout, 1, binary, act))
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            layers.append(nn.BatchNorm2d(cout))
            if not binary:
                layers.append(nn.ReLU(inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = image_size // 8
        self.classifier = nn.Linear(cin * side * side, num_classes)
        self.widths = list(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """Two 3x3 convs (`mid` channels between them) with a residual; a projection when shapes change.

    The projection (2x2 average pool when strided, then a 1x1 conv) stays full precision.
    """

    def __init__(self, cin: int, mid: int, cout: int, stride: int, binary: bool, act: str) -> None:
        super().__init__()
        self.binary = binary
        self.conv1 = _conv3x3(cin, mid, stride, binary, act)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = _conv3x3(mid, cout, 1, binary, act)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            pool: list[nn.Module] = [nn.AvgPool2d(stride)] if stride != 1 else []
            self.shortcut = nn.Sequential(*pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        if not self.binary:
            out = F.relu(out)
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        return out if self.binary else F.relu(out)


class ResNet18(nn.Module):
    """CIFAR ResNet-18: a 3x3 stem, four stages of two basic blocks, average pool, linear.

    `stage_widths` (4) are the block output widths of each stage, `mids` (8) the channels between
    the two convs of each block. Stem, projections and classifier are full precision.
    """

    def __init__(self, stage_widths: list[int], mids: list[int], num_classes: int = 10, binary: bool = True,
                 act: str = "sign") -> None:
        super().__init__()
        if len(stage_widths) != 4 or len(mids) != 8:
            raise InvalidArchitecture(f"ResNet-18 needs 4 stage widths and 8 block widths, got "
                                      f"{len(stage_widths)} and {len(mids)}")
        self.stem = nn.Sequential(nn.Conv2d(3, stage_widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stage_widths[0]))
        if not binary:
            self.stem.append(nn.ReLU(inplace=True))
        blocks = []
        cin = stage_widths[0]
        for s, cout in enumerate(stage_widths):
            for b in range(2):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(BasicBlock(cin, mids[2 * s + b], cout, stride, binary, act))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(cin, num_classes)
        self.widths = list(stage_widths) + list(mids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def num_ratios(net: str) -> int:
    """How many expansion ratios a network takes (VGG-Small 6, ResNet-18 12)."""
    if net == "vgg-small":
        return 6
    if net == "resnet18":
        return 12
    raise ConfigError(f"unknown network {net!r}; use one of {', '.join(NETS)}")


def widths_for(net: str, ratios: list[float], width_scale: float = 1.0) -> list[int]:
    """Channel counts of each searchable layer for the given ratios."""
    n = num_ratios(net)
    if len(ratios) != n:
        raise InvalidArchitecture(f"{net} takes {n} ratios, got {len(ratios)}: {list(ratios)}")
    if net == "vgg-small":
        return [_width(b, r, width_scale) for b, r in zip(VGG_BASE, ratios)]
    stages = [_width(b, r, width_scale) for b, r in zip(RESNET_STAGES, ratios[:4])]
    mids = [_width(RESNET_STAGES[j // 2], r, width_scale) for j, r in enumerate(ratios[4:])]
    return stages + mids


def build_network(net: str, ratios: list[float], *, binary: bool = True, num_classes: int = 10,
                  act: str = "sign", width_scale: float = 1.0, image_size: int = 32) -> nn.Module:
    """The network for `ratios` (one per searchable layer), binary or full precision."""
    widths = widths_for(net, ratios, width_scale)
    if net == "vgg-small":
        if image_size % 8:
            raise ConfigError(f"VGG-Small needs an image size divisible by 8, got {image_size}")
        return VGGSmall(widths, num_classes, binary, act, image_size)
    return ResNet18(widths[:4], widths[4:], num_classes, binary, act)


def preset_ratios(net: str, preset: str) -> tuple[list[float], bool]:
    """(ratios, binary) of a named preset for `net`."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    entry = PRESETS[preset]
    if net not in entry["nets"]:
        raise ConfigError(f"preset {preset!r} is for {', '.join(entry['nets'])}, not {net}")
    ratios = entry["ratios"] if entry["ratios"] is not None else [1.0] * num_ratios(net)
    return [float(r) for r in ratios], bool(entry["binary"])
