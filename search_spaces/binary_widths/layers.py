"""Binary layers: sign / DoReFa activations and scaled-sign weights with straight-through gradients, and
the binary convolution built from them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from searchlab.errors import ConfigError


ACTIVATIONS = ("sign", "dorefa")


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
