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

from searchlab.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "layers": ["ACTIVATIONS", "binarize_activation", "binarize_weight", "BinaryConv2d"],
    "networks": ["NETS", "DEFAULT_RATIOS", "VGG_BASE", "RESNET_STAGES", "PRESETS", "VGGSmall", "BasicBlock",
        "ResNet18", "num_ratios", "widths_for", "build_network", "preset_ratios"],
    "accounting": ["conv_linear_macs", "account", "layer_table", "table_cost", "account_ratios"],
    "space": ["BinarySpaceConfig", "BinaryWidthSpace"],
})
