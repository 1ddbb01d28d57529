"""The standard classifiers: published parameter counts, output shapes, shortcuts and bad names."""

from __future__ import annotations

import pytest
import torch

from searchlab.search_spaces.classifiers import CLASSIFIERS, build_classifier
from searchlab.errors import ConfigError


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, expected", [
    ("lenet5", 61_706),      # LeCun et al. 1998 layout, 10 classes
    ("resnet20", 269_722),   # He et al. 2016: 0.27 M
    ("resnet56", 853_018),   # He et al. 2016: 0.85 M
    ("vgg_small", 4_660_106),
])
def test_parameter_counts(name, expected):
    assert _params(build_classifier(name)) == expected


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_forward_shapes(name):
    grey = name == "lenet5"
    x = torch.zeros(2, 1 if grey else 3, 28 if grey else 32, 28 if grey else 32)
    assert build_classifier(name, num_classes=7)(x).shape == (2, 7)


def test_variants():
    assert build_classifier("lenet5", image_size=32)(torch.zeros(1, 1, 32, 32)).shape == (1, 10)
    b = build_classifier("resnet20", shortcut="B")
    assert _params(b) > _params(build_classifier("resnet20"))  # 1x1 projection shortcuts add weights
    assert b(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    half = build_classifier("vgg-small", width=0.5)
    assert half.features[0][0].out_channels == 64
    with pytest.raises(ConfigError, match="unknown classifier"):
        build_classifier("alexnet")
    with pytest.raises(ConfigError, match="6n\\+2"):
        build_classifier("resnet20").__class__(depth=21)
