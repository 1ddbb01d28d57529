"""The standard classifiers that compression searches start from.

LeNet-5 for MNIST (LeCun et al. 1998, with ReLU and max pooling as in modern re-implementations),
VGG-small for CIFAR-10 (the 6-conv VGG used by the binary-network papers: 128-128-M-256-256-M-512-512-M,
then one linear layer) and the CIFAR ResNets of He et al. 2016 (ResNet-20, ResNet-56: 3 stages of
n basic blocks, 16/32/64 channels). `build_classifier(name, ...)` builds one by name.

Every conv layer is a plain `nn.Conv2d` followed by `nn.BatchNorm2d` (except LeNet-5, which has no
BN), and the names are stable, so a pruning space can find the filters it masks by walking
`model.named_modules()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from searchlab.errors import ConfigError


class LeNet5(nn.Module):
    """LeNet-5: conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - fc(num_classes); 28x28 or 32x32 input."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> None:
        super().__init__()
        # 28x28 input is padded by 2 so that the feature maps match the original 32x32 design.
        pad = 2 if image_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VGGSmall(nn.Module):
    """VGG-small: 2x128, pool, 2x256, pool, 2x512, pool, linear. `width` scales every conv."""

    PLAN = (128, 128, "M", 256, 256, "M", 512, 512, "M")

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for item in self.PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                cout = max(1, int(round(item * width)))
                layers.append(_conv_bn_relu(cin, cout))
                cin = cout
        self.features = nn.Sequential(*layers)
        side = image_size // 8
        self.classifier = nn.Linear(cin * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut; a stride or width change uses option A
    (stride-2 subsampling and zero-padded channels, no parameters) or option B (1x1 conv + BN)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.cin, self.cout, self.kind = stride, cin, cout, shortcut
        self.shortcut: nn.Module | None = None
        if (stride != 1 or cin != cout) and shortcut == "B":
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def _short(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.cin == self.cout:
            return x
        if self.shortcut is not None:
            return self.shortcut(x)
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.cout - self.cin
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._short(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for CIFAR: conv3x3(16), 3 stages of n blocks (16, 32, 64 channels), avg pool, linear."""

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A",
                 width: float = 1.0) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ConfigError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        if shortcut not in ("A", "B"):
            raise ConfigError(f"ResNet shortcut must be 'A' or 'B', got {shortcut!r}")
        n = (depth - 2) // 6
        widths = [max(1, int(round(c * width))) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        cin = widths[0]
        for i, cout in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(cin, cout, stride, shortcut))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def resnet20(num_classes: int = 10, in_channels: int = 3, **kw) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels, **kw)


def resnet56(num_classes: int = 10, in_channels: int = 3, **kw) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels, **kw)


CLASSIFIERS = {
    "lenet5": LeNet5,
    "vgg_small": VGGSmall,
    "resnet20": resnet20,
    "resnet56": resnet56,
}


def build_classifier(name: str, num_classes: int = 10, in_channels: int | None = None, **kw) -> nn.Module:
    """Build a standard classifier by name (lenet5, vgg_small, resnet20, resnet56).

    `in_channels` defaults to 1 for LeNet-5 (MNIST) and 3 otherwise; extra keywords go to the
    constructor (`image_size`, `width`, `shortcut`).
    """
    key = name.lower().replace("-", "_")
    if key not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    if in_channels is None:
        in_channels = 1 if key == "lenet5" else 3
    return CLASSIFIERS[key](num_classes=num_classes, in_channels=in_channels, **kw)
