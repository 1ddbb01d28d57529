"""Binary networks with searchable per-layer widths (Shen et al., ICCVW 2019, arXiv:1909.07378).

Binary features are weak, so a binary network loses accuracy against full precision; giving each
layer more channels wins much of it back at a small cost, because binary operations are cheap.
This module holds the binary convolution, the two networks (VGG-Small and a CIFAR ResNet-18) built
from per-layer expansion ratios, their accounting (params, size in bits, FLOPs, BOPs and the combined
FLOPs + BOPs/64), the named presets, and the search space whose genome is one ratio index per layer.

Conventions: FLOPs and BOPs are multiply-accumulates (the convention of the binary-network papers,
where ResNet-18 on ImageNet has 1.8e9 FLOPs) of conv and linear layers, counted on a meta-device copy
of the network (checked against torch's FlopCounterMode in the tests). Convolutions of binary layers
count as BOPs, everything else as FLOPs.
Batch-norm, pooling and element-wise operations are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt

NETS = ("vgg-small", "resnet18")
ACTIVATIONS = ("sign", "dorefa")
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


# ------------------------------------------------------------------------------------------------
# binary layers
# ------------------------------------------------------------------------------------------------

class _SignSTE(torch.autograd.Function):
    """sign(x) in {-1, +1} forward; gradient passed where |x| <= 1 (clipped straight-through)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype) * 2 - 1

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class _DoReFaSTE(torch.autograd.Function):
    """round(clip(x, 0, 1)) in {0, 1} forward; gradient passed on [0, 1]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0.5).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x >= 0) & (x <= 1)).to(grad.dtype)


class _ScaledSignSTE(torch.autograd.Function):
    """+-mean|w| per output channel forward; identity gradient to the latent weights."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        alpha = w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)
        return torch.where(w >= 0, alpha, -alpha)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def binarize_activation(x: torch.Tensor, mode: str = "sign") -> torch.Tensor:
    """Two-valued activations with a clipped straight-through gradient.

    "sign": {-1, +1} (x >= 0 maps to +1, so zero never appears); gradient 1 where |x| <= 1.
    "dorefa": the 1-bit DoReFa quantiser, round(clip(x, 0, 1)) in {0, 1}; gradient 1 on [0, 1].
    """
    if mode == "sign":
        return _SignSTE.apply(x)
    if mode == "dorefa":
        return _DoReFaSTE.apply(x)
    raise ConfigError(f"unknown binary activation {mode!r}; use one of {', '.join(ACTIVATIONS)}")


def binarize_weight(w: torch.Tensor) -> torch.Tensor:
    """sign(w) scaled by mean |w| of each output channel (XNOR-Net); identity straight-through gradient.

    Each output channel's weights take exactly two values, +alpha and -alpha.
    """
    return _ScaledSignSTE.apply(w)


class BinaryConv2d(nn.Conv2d):
    """A convolution whose inputs and weights are binarised in the forward pass.

    The latent real weights are what the optimiser updates; at inference the layer is exactly a
    1-bit convolution (XNOR + popcount) followed by one scale per output channel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, act: str = "sign") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        if act not in ACTIVATIONS:
            raise ConfigError(f"unknown binary activation {act!r}; use one of {', '.join(ACTIVATIONS)}")
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xb = binarize_activation(x, self.act)
        wb = binarize_weight(self.weight)
        return F.conv2d(xb, wb, None, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", act={self.act}"


def _conv3x3(cin: int, cout: int, stride: int, binary: bool, act: str) -> nn.Conv2d:
    if binary:
        return BinaryConv2d(cin, cout, 3, stride=stride, padding=1, act=act)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


# ------------------------------------------------------------------------------------------------
# networks
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# accounting
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# the search space
# ------------------------------------------------------------------------------------------------

def _parse_floats(text: str) -> list[float]:
    return [float(t) for t in str(text).replace(",", " ").split()]


@dataclass(frozen=True)
class BinarySpaceConfig:
    """binary network widths"""

    net: str = opt("vgg-small", help="network whose per-layer widths are searched", choices=list(NETS))
    ratios: list[float] = opt(list(DEFAULT_RATIOS), help="allowed expansion ratios per layer")
    width_scale: float = opt(1.0, help="multiplies every base width (e.g. 0.25 for quick CPU runs)")
    act: str = opt("sign", help="binary activation: sign {-1,+1} or 1-bit DoReFa {0,1}", choices=list(ACTIVATIONS))
    num_classes: int = opt(10, help="classes of the classifier head (accounting; training uses the data's)")
    image_size: int = opt(32, help="input side in pixels (accounting)")

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise ConfigError(f"unknown network {self.net!r}; use one of {', '.join(NETS)}")
        if not self.ratios:
            raise ConfigError("--ratios needs at least one value, e.g. --ratios 0.5 1 2 3 4")
        if any(not math.isfinite(r) or r <= 0 for r in self.ratios):
            raise ConfigError(f"--ratios must be positive numbers, got {list(self.ratios)}")
        if len(set(self.ratios)) != len(self.ratios):
            raise ConfigError(f"--ratios has repeated values: {list(self.ratios)}")
        if not 0 < self.width_scale <= 16:
            raise ConfigError(f"--width-scale must be in (0, 16], got {self.width_scale}")
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"--act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}")
        if self.num_classes < 1 or self.image_size < 8:
            raise ConfigError("--num-classes must be >= 1 and --image-size >= 8")


class BinaryWidthSpace:
    """Genome: one index into `ratios` per searchable layer (6 for VGG-Small, 12 for ResNet-18)."""

    def __init__(self, config: BinarySpaceConfig | None = None) -> None:
        self.config = config or BinarySpaceConfig()
        self.name = "binary"
        self.net = self.config.net
        self.ratios = sorted(float(r) for r in self.config.ratios)
        self.length = num_ratios(self.net)
        self._cache: dict[str, dict] = {}

    # genome <-> ratios
    def ratios_of(self, genome: list[int]) -> list[float]:
        return [self.ratios[i] for i in self.validate(genome)]

    def genome_of(self, ratios: list[float]) -> list[int]:
        """Indices of `ratios`; InvalidArchitecture when the length or a value is not allowed."""
        if not isinstance(ratios, (list, tuple)) or len(ratios) != self.length:
            raise InvalidArchitecture(f"{self.net} takes {self.length} ratios, got "
                                      f"{len(ratios) if isinstance(ratios, (list, tuple)) else ratios!r}")
        out = []
        for r in ratios:
            match = [i for i, v in enumerate(self.ratios) if abs(v - float(r)) < 1e-9]
            if not match:
                raise InvalidArchitecture(f"ratio {float(r):g} is not allowed; allowed ratios: "
                                          f"{', '.join(f'{v:g}' for v in self.ratios)}")
            out.append(match[0])
        return out

    def one_x(self) -> list[int]:
        """The genome of the plain 1x network (ratio 1 everywhere, or the nearest allowed ratio)."""
        nearest = int(np.argmin([abs(math.log(r)) for r in self.ratios]))
        return [nearest] * self.length

    # protocol
    def sample(self, rng: np.random.Generator) -> list[int]:
        return [int(i) for i in rng.integers(0, len(self.ratios), size=self.length)]

    def mutate(self, genome: list[int], rng: np.random.Generator) -> list[int]:
        """Reset one layer's ratio (plus each other layer with probability 1/L) to another value."""
        child = list(self.validate(genome))
        if len(self.ratios) == 1:
            return child
        forced = int(rng.integers(self.length))
        for i in range(self.length):
            if i == forced or rng.random() < 1.0 / self.length:
                choices = [j for j in range(len(self.ratios)) if j != child[i]]
                child[i] = int(choices[int(rng.integers(len(choices)))])
        return child

    def validate(self, genome: list[int]) -> list[int]:
        if not isinstance(genome, (list, tuple)):
            raise InvalidArchitecture(f"a binary genome is a list of {self.length} ratio indices, got {genome!r}")
        if len(genome) != self.length:
            raise InvalidArchitecture(f"{self.net} takes {self.length} ratio indices, got {len(genome)}")
        out = []
        for g in genome:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 0 <= int(g) < len(self.ratios):
                raise InvalidArchitecture(f"ratio index {g!r} is outside 0..{len(self.ratios) - 1} "
                                          f"(ratios {', '.join(f'{v:g}' for v in self.ratios)})")
            out.append(int(g))
        return out

    def key(self, genome: list[int]) -> str:
        return f"{self.net}:" + ",".join(f"{r:g}" for r in self.ratios_of(genome))

    def build(self, genome: list[int], *, num_classes: int | None = None, binary: bool = True) -> nn.Module:
        return build_network(self.net, self.ratios_of(genome), binary=binary,
                             num_classes=num_classes or self.config.num_classes, act=self.config.act,
                             width_scale=self.config.width_scale, image_size=self.config.image_size)

    def cost(self, ratios: list[float], binary: bool = True) -> dict[str, float]:
        """Accounting of a ratio list (cached)."""
        k = f"{binary}:{ratios}"
        if k not in self._cache:
            widths = widths_for(self.net, ratios, self.config.width_scale)
            rows = layer_table(self.net, widths, self.config.image_size, self.config.num_classes)
            self._cache[k] = table_cost(rows, binary)
        return self._cache[k]

    def base_cost(self) -> float:
        """FLOPs + BOPs/64 of the 1x binary network, the unit of `--max-flops-ratio`."""
        return self.cost([1.0] * self.length)["flops_bops64"]

    def cost_ratio(self, genome: list[int]) -> float:
        return self.cost(self.ratios_of(genome))["flops_bops64"] / self.base_cost()

    def describe(self, genome: list[int]) -> dict:
        ratios = self.ratios_of(genome)
        info = dict(self.cost(ratios))
        info["cost_ratio"] = info["flops_bops64"] / self.base_cost()
        return {"net": self.net, "ratios": ratios,
                "widths": widths_for(self.net, ratios, self.config.width_scale), **info}

    def min_genome(self) -> list[int]:
        """The cheapest genome: the smallest ratio everywhere (cost grows with every ratio)."""
        return [0] * self.length
