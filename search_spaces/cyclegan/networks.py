"""The CycleGAN reference ResnetGenerator and PatchGAN (NLayer) discriminator, laid out as `model.N.*`
so the widely used checkpoints load directly, and what a generator costs (params, size, FLOPs)."""

from __future__ import annotations

import torch
from torch import nn


SIDES = ("A", "B")


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, norm, relu, pad, conv3x3, norm](x); the sub-module is named `block`."""

    def __init__(self, channels: int, inner: int, affine: bool, bias: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, inner, 3, bias=bias),
            nn.InstanceNorm2d(inner, affine=affine), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(inner, channels, 3, bias=bias),
            nn.InstanceNorm2d(channels, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN ResnetGenerator with per-segment widths (ngf, 2ngf, 4ngf, 2ngf, ngf when full)."""

    def __init__(self, widths: tuple[int, int, int, int, int] | list[int], n_blocks: int = 9, *,
                 in_ch: int = 3, out_ch: int = 3, affine: bool = False, bias: bool = True) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = (int(w) for w in widths)
        self.widths, self.n_blocks, self.in_ch, self.out_ch = (w0, w1, w2, w3, w4), n_blocks, in_ch, out_ch
        self.affine, self.bias = affine, bias
        norm = lambda c: nn.InstanceNorm2d(c, affine=affine)  # noqa: E731
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, w0, 7, bias=bias), norm(w0), nn.ReLU(True),
                                   nn.Conv2d(w0, w1, 3, 2, 1, bias=bias), norm(w1), nn.ReLU(True),
                                   nn.Conv2d(w1, w2, 3, 2, 1, bias=bias), norm(w2), nn.ReLU(True)]
        layers += [ResnetBlock(w2, w2, affine, bias) for _ in range(n_blocks)]
        layers += [nn.ConvTranspose2d(w2, w3, 3, 2, 1, output_padding=1, bias=bias), norm(w3), nn.ReLU(True),
                   nn.ConvTranspose2d(w3, w4, 3, 2, 1, output_padding=1, bias=bias), norm(w4), nn.ReLU(True),
                   nn.ReflectionPad2d(3), nn.Conv2d(w4, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def convs(self) -> list[nn.Module]:
        """Every conv before the last, in genome order (the residual ones share segment 2)."""
        return self._layers(0)

    def norms(self) -> list[nn.Module]:
        """The InstanceNorm after each conv of `convs()`; masks are applied to their outputs."""
        return self._layers(1)

    def _layers(self, after: int) -> list[nn.Module]:
        """The module `after` places behind each conv of `convs()` in its Sequential (0: the conv itself)."""
        m, n, k = self.model, self.n_blocks, after
        out = [m[1 + k], m[4 + k], m[7 + k]]
        for b in range(n):
            out += [m[10 + b].block[1 + k], m[10 + b].block[5 + k]]
        return out + [m[10 + n + k], m[13 + n + k]]

    def layer_segments(self) -> list[int]:
        """For each entry of `convs()`, the genome segment (0..4) its outputs belong to."""
        return [0, 1, 2] + [2] * (2 * self.n_blocks) + [3, 4]


class PatchDiscriminator(nn.Module):
    """The CycleGAN PatchGAN (NLayerDiscriminator): 4x4 convs, LeakyReLU 0.2, InstanceNorm."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, *, affine: bool = False,
                 bias: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                       nn.InstanceNorm2d(ndf * mult, affine=affine), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def count_params(gen: nn.Module) -> int:
    return int(sum(p.numel() for p in gen.parameters()))


def param_count(widths: list[int] | tuple[int, ...], n_blocks: int, *, in_ch: int = 3, out_ch: int = 3,
                affine: bool = False, bias: bool = True) -> int:
    """Parameters of a ResnetGenerator with these segment widths, without building it."""
    w0, w1, w2, w3, w4 = widths
    b, a = int(bias), 2 * int(affine)

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + b * cout + a * cout

    return (conv(in_ch, w0, 7) + conv(w0, w1, 3) + conv(w1, w2, 3) + 2 * n_blocks * conv(w2, w2, 3)
            + conv(w2, w3, 3) + conv(w3, w4, 3) + w4 * out_ch * 49 + out_ch)


def size_mb(params: int) -> float:
    """float32 size in MB as the paper counts it (2^20 bytes)."""
    return params * 4 / 2 ** 20


def count_flops(gen: ResnetGenerator, size: int = 256) -> int:
    """FLOPs (2 x multiply-accumulates, torch's FlopCounterMode) of one forward at size x size."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        shadow = ResnetGenerator(gen.widths, gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch,
                                 affine=gen.affine, bias=gen.bias)
        x = torch.empty(1, gen.in_ch, size, size)
    with FlopCounterMode(display=False) as counter:
        shadow(x)
    return int(counter.get_total_flops())


def describe_generator(gen: ResnetGenerator, flops_size: int = 256) -> dict:
    params = count_params(gen)
    return {"params": params, "size_mb": round(size_mb(params), 3), "flops": count_flops(gen, flops_size),
            "widths": list(gen.widths), "n_blocks": gen.n_blocks}
