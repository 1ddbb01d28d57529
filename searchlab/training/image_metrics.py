"""PSNR and SSIM the way super-resolution papers report them (pure functions on torch tensors).

The field's protocol: convert RGB to the Y channel of ITU-R BT.601 YCbCr (MATLAB's `rgb2ycbcr`,
Y in [16, 235]), crop the HR image to a multiple of the scale before downscaling, shave `scale`
pixels from every border before comparing, and compute SSIM with an 11x11 Gaussian window
(sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255), averaged over the valid region.
Images are [C,H,W] or [N,C,H,W] tensors with values in [0, 255] (uint8 or float).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def modcrop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of [..., H, W] so both sides are multiples of `scale`."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def shave(image: torch.Tensor, border: int) -> torch.Tensor:
    """Remove `border` pixels from each side of [..., H, W]."""
    if border <= 0:
        return image
    return image[..., border:-border, border:-border]


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of an RGB image in [0, 255]: [...,3,H,W] -> [...,1,H,W] float64 in [16, 235].

    A one-channel (grey) image is treated as R = G = B.
    """
    x = image.to(torch.float64)
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    if x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects 1 or 3 channels, got {x.shape[-3]}")
    r, g, b = x.unbind(dim=-3)
    y = 16.0 + (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0
    return y.unsqueeze(-3)


def _prepare(sr: torch.Tensor, hr: torch.Tensor, border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if sr.shape != hr.shape:
        raise ValueError(f"image shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if y_channel:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    else:
        sr, hr = sr.to(torch.float64), hr.to(torch.float64)
    return shave(sr, border), shave(hr, border)


def psnr(sr: torch.Tensor, hr: torch.Tensor, *, border: int = 0, y_channel: bool = True,
         data_range: float = 255.0) -> torch.Tensor:
    """PSNR in dB per image (a scalar for [C,H,W], shape [N] for [N,C,H,W])."""
    a, b = _prepare(sr, hr, border, y_channel)
    mse = ((a - b) ** 2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range ** 2 / mse.clamp_min(1e-12))


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The 11x11 Gaussian filter, 'valid' region, as two 1-D passes (the window is separable)."""
    return F.conv2d(F.conv2d(x, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))


def ssim(sr: torch.Tensor, hr: torch.Tensor, *, border: int = 0, y_channel: bool = True,
         data_range: float = 255.0) -> torch.Tensor:
    """SSIM (Wang et al. 2004) per image, mean over channels and the valid (unpadded) region."""
    a, b = _prepare(sr, hr, border, y_channel)
    batched = a.dim() == 4
    if not batched:
        a, b = a[None], b[None]
    n, c, h, w = a.shape
    if h < 11 or w < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after shaving, got {h}x{w}")
    a = a.reshape(n * c, 1, h, w)
    b = b.reshape(n * c, 1, h, w)
    g = _gaussian_1d().to(a.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a ** 2
    var_b = _blur(b * b, g) - mu_b ** 2
    cov = _blur(a * b, g) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    values = ssim_map.reshape(n, c, -1).mean(dim=(1, 2))
    return values if batched else values[0]


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round a float image in [0, 255] to the uint8 grid, as saving it would."""
    return image.round().clamp(0, 255)


def psnr_from_mse(mse: float, data_range: float = 255.0) -> float:
    """PSNR in dB of a mean squared error on a scale `data_range` wide (255 for [0, 255], 2 for [-1, 1])."""
    return 10.0 * math.log10(data_range ** 2 / max(mse, 1e-12))
