"""Binary networks with searchable per-layer widths (Shen et al., ICCVW 2019, arXiv:1909.07378).

Binary features are weak, so a binary network loses accuracy against full precision; giving each
layer more channels wins much of it back at a small cost, because binary operations are cheap.
One module a job: `layers` (the binary convolution), `networks` (VGG-Small and a CIFAR ResNet-18 built
from per-layer expansion ratios, and the named presets), `accounting` (params, size in bits, FLOPs, BOPs
and the combined FLOPs + BOPs/64), `space` (the search space whose genome is one ratio index per layer)
and `plugin` (registers the space).

Conventions: FLOPs and BOPs are multiply-accumulates (the convention of the binary-network papers,
where ResNet-18 on ImageNet has 1.8e9 FLOPs) of conv and linear layers, counted on a meta-device copy
of the network (checked against torch's FlopCounterMode in the tests). Convolutions of binary layers
count as BOPs, everything else as FLOPs.
Batch-norm, pooling and element-wise operations are not counted.
"""

from searchlab.search_spaces.binary_widths.layers import (ACTIVATIONS, binarize_activation, binarize_weight,
                                                          BinaryConv2d)
from searchlab.search_spaces.binary_widths.networks import (NETS, DEFAULT_RATIOS, VGG_BASE, RESNET_STAGES, PRESETS,
                                                            VGGSmall, BasicBlock, ResNet18, num_ratios, widths_for,
                                                            build_network, preset_ratios)
from searchlab.search_spaces.binary_widths.accounting import (conv_linear_macs, account, layer_table, table_cost,
                                                              account_ratios)
from searchlab.search_spaces.binary_widths.space import BinarySpaceConfig, BinaryWidthSpace

__all__ = ["ACTIVATIONS", "BasicBlock", "BinaryConv2d", "BinarySpaceConfig", "BinaryWidthSpace", "DEFAULT_RATIOS",
           "NETS", "PRESETS", "RESNET_STAGES", "ResNet18", "VGGSmall", "VGG_BASE", "account", "account_ratios",
           "binarize_activation", "binarize_weight", "build_network", "conv_linear_macs", "layer_table",
           "num_ratios", "preset_ratios", "table_cost", "widths_for"]
