"""What a binary network costs: params, size in bits, FLOPs and BOPs (multiply-accumulates of conv and
linear layers, counted on a meta-device copy; binary convolutions count as BOPs) and FLOPs + BOPs/64."""

from __future__ import annotations

import torch
from torch import nn

from searchlab.search_spaces.binary_widths.layers import BinaryConv2d
from searchlab.search_spaces.binary_widths.networks import build_network


def conv_linear_macs(model: nn.Module, image_size: int = 32) -> dict[str, int]:
    """Multiply-accumulates of every Conv2d and Linear leaf for one 3-channel image, by module name.

    One forward pass on a meta-device copy with hooks that read the output shapes (nothing is
    computed). It agrees with torch's FlopCounterMode (which counts 2 per MAC; see the tests) and is
    about 20 times faster, which matters when the GA screens many codes against the budget.
    """
    meta = _meta_copy(model)
    macs: dict[str, int] = {}

    def hook(name):
        def record(mod, inputs, out):
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            else:
                k = mod.in_features
            macs[name] = macs.get(name, 0) + out.numel() * k
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in meta.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            meta(torch.empty(1, 3, image_size, image_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return macs


def account(model: nn.Module, image_size: int = 32) -> dict[str, float]:
    """params, size_bits, flops, bops and flops_bops64 (= flops + bops / 64) of one 3-channel image.

    FLOPs and BOPs are multiply-accumulates of conv and linear layers (`conv_linear_macs`); binary
    convs count as BOPs. Sizes: binary conv weights 1 bit each plus one 32-bit scale per output
    channel; all other parameters 32 bits. Batch-norm running statistics are buffers, not counted.
    """
    modules = dict(model.named_modules())
    params = sum(p.numel() for p in model.parameters())
    bits = 0
    for mod in modules.values():
        for pname, p in mod.named_parameters(recurse=False):
            if isinstance(mod, BinaryConv2d) and pname == "weight":
                bits += p.numel() + 32 * p.shape[0]
            else:
                bits += 32 * p.numel()
    flops = bops = 0
    for name, macs in conv_linear_macs(model, image_size).items():
        if isinstance(modules[name], BinaryConv2d):
            bops += macs
        else:
            flops += macs
    return {"params": float(params), "size_bits": float(bits), "flops": float(flops), "bops": float(bops),
            "flops_bops64": float(flops + bops / 64)}


def _meta_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` on the meta device (same module names, no memory)."""
    import copy

    if all(p.is_meta for p in model.parameters()):
        clone = model
    else:
        with torch.device("meta"):
            clone = copy.deepcopy(model).to("meta")
    return clone.eval()


def layer_table(net: str, widths: list[int], image_size: int = 32, num_classes: int = 10) -> list[tuple]:
    """(kind, in, out, kernel, output side, binary-capable) of every conv/linear layer, plus ("bn", c) rows.

    The closed-form twin of `build_network`, so the GA can price thousands of codes without building
    a network; the tests check it against `account` and torch's FlopCounterMode.
    """
    rows: list[tuple] = []
    if net == "vgg-small":
        cin, side = 3, image_size
        for i, c in enumerate(widths):
            rows += [("conv", cin, c, 3, side, i > 0), ("bn", c)]
            if i % 2 == 1:
                side //= 2
            cin = c
        rows.append(("linear", cin * side * side, num_classes, 1, 1, False))
        return rows
    stages, mids = widths[:4], widths[4:]
    rows += [("conv", 3, stages[0], 3, image_size, False), ("bn", stages[0])]
    cin, side = stages[0], image_size
    for s, cout in enumerate(stages):
        for b in range(2):
            stride = 2 if (s > 0 and b == 0) else 1
            side //= stride
            mid = mids[2 * s + b]
            rows += [("conv", cin, mid, 3, side, True), ("bn", mid), ("conv", mid, cout, 3, side, True), ("bn", cout)]
            if stride != 1 or cin != cout:
                rows += [("conv", cin, cout, 1, side, False), ("bn", cout)]
            cin = cout
    rows.append(("linear", cin, num_classes, 1, 1, False))
    return rows


def table_cost(rows: list[tuple], binary: bool = True) -> dict[str, float]:
    """The `account` figures computed from a `layer_table`."""
    params = bits = flops = bops = 0
    for row in rows:
        if row[0] == "bn":
            params += 2 * row[1]
            bits += 64 * row[1]
            continue
        kind, cin, cout, k, side, can_binary = row
        weights = cin * cout * k * k
        macs = weights * side * side
        extra = cout if kind == "linear" else 0  # linear bias
        params += weights + extra
        if binary and can_binary:
            bits += weights + 32 * cout
            bops += macs
        else:
            bits += 32 * (weights + extra)
            flops += macs
    return {"params": float(params), "size_bits": float(bits), "flops": float(flops), "bops": float(bops),
            "flops_bops64": float(flops + bops / 64)}


def account_ratios(net: str, ratios: list[float], *, binary: bool = True, num_classes: int = 10,
                   width_scale: float = 1.0, image_size: int = 32) -> dict[str, float]:
    """Accounting of the network for `ratios`, built on the meta device (fast, no memory)."""
    with torch.device("meta"):
        model = build_network(net, ratios, binary=binary, num_classes=num_classes,
                              width_scale=width_scale, image_size=image_size)
    return account(model, image_size)
