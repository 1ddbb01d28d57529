"""Registers the `binary` space (its strategy and evaluator come from searchlab.evolvers.binary_channel_search)."""

from __future__ import annotations

from searchlab import registry
from searchlab.search_spaces.binary_widths.space import BinarySpaceConfig, BinaryWidthSpace

registry.register_space(
    "binary", config=BinarySpaceConfig, factory=lambda config, ctx: BinaryWidthSpace(config),
    default_strategy="binary-ga", default_evaluator="binary-train",
    help="per-layer widths of a binary VGG-Small or ResNet-18 (Shen et al. 2019); e.g.\n"
         "  searchlab search binary --net vgg-small --data imagefolder:cifar10_jpg.tar.gz --population 8 \\\n"
         "      --generations 4 --epochs-per-candidate 2 --max-flops 2 --run runs/binary")
