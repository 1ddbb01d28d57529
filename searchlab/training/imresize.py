"""MATLAB-compatible bicubic `imresize`, antialiasing included.

Super-resolution papers make their low-resolution inputs with MATLAB's `imresize(hr, 1/s, 'bicubic')`
and compare against its bicubic upscaling; PIL and torch's `interpolate` use other kernels and
other border rules, which moves PSNR by tenths of a dB. This module reproduces MATLAB's algorithm:
the Keys cubic kernel (a = -0.5), a kernel stretched by 1/scale when shrinking (antialiasing),
symmetric border mirroring, and one separable pass per dimension (rows first).

Each pass sums a few weighted taps per output pixel (numpy); `resize_matrices` gives the same weights
as dense (out x in) matrices for torch tensors on any device (differentiable, used as a network's
bicubic skip connection).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def _taps(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input indices, weights), both [out_len, taps]: which input pixels make each output pixel."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel = lambda t: scale * cubic(scale * t)  # noqa: E731 - the stretched kernel
        kernel_width = kernel_width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)           # output pixel centre in input coordinates
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]       # 1-based input indices
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx0 = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    idx0.setflags(write=False)
    w.setflags(write=False)
    return idx0, w


def resize_weights(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len x in_len) matrix that resizes one dimension the way MATLAB does."""
    if in_len < 1 or out_len < 1:
        raise ValueError(f"cannot resize a length-{in_len} dimension to length {out_len}")
    idx, w = _taps(int(in_len), int(out_len), float(scale), bool(antialias))
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_len), idx.shape[1]), idx.ravel()), w.ravel())
    return matrix


def _resize_axis(arr: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """Resize one axis of a float64 array by summing its few weighted taps (cost ~ taps, not length)."""
    idx, w = _taps(arr.shape[axis], int(out_len), float(scale), bool(antialias))
    moved = np.moveaxis(arr, axis, -1)                   # [..., in]
    out = (moved[..., idx] * w).sum(axis=-1)             # [..., out, taps] -> [..., out]
    return np.moveaxis(out, -1, axis)


def output_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size: ceil(size * scale) per dimension."""
    return tuple(int(math.ceil(round(s * scale, 10))) for s in size)  # type: ignore[return-value]


def imresize(image: np.ndarray, scale: float | None = None, *, size: tuple[int, int] | None = None,
             antialias: bool = True, channels_first: bool = True) -> np.ndarray:
    """Resize a [C,H,W] (or [H,W,C] with channels_first=False, or [H,W]) image like MATLAB.

    uint8 input gives uint8 output (rounded and clipped, as MATLAB does); float input stays float64.
    Give either `scale` (e.g. 1/2 or 3) or `size` = (height, width).
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr3, squeeze = arr[None], True
    elif arr.ndim == 3:
        arr3, squeeze = (arr if channels_first else np.moveaxis(arr, -1, 0)), False
    else:
        raise ValueError(f"imresize expects a 2-D or 3-D image, got shape {arr.shape}")
    h, w = arr3.shape[1:]
    if size is None:
        if scale is None or scale <= 0:
            raise ValueError("imresize needs a positive scale or an output size")
        size = output_size((h, w), scale)
        sh = sw = float(scale)
    else:
        sh, sw = size[0] / h, size[1] / w
    if min(size) < 1:
        raise ValueError(f"cannot resize a {h}x{w} image to {size[0]}x{size[1]}")
    out = _resize_axis(arr3.astype(np.float64), 1, size[0], sh, antialias)   # rows first, as MATLAB
    out = _resize_axis(out, 2, size[1], sw, antialias)
    if arr.dtype == np.uint8:
        out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if squeeze:
        return out[0]
    return out if channels_first else np.moveaxis(out, 0, -1)


def resize_matrices(in_size: tuple[int, int], scale: float, *, device=None, dtype=None,
                    antialias: bool = True):
    """Torch (rows, cols) weight matrices: `rows @ x @ cols.T` resizes [..., H, W] by `scale`."""
    import torch

    out = output_size(in_size, scale)
    rows = torch.tensor(resize_weights(in_size[0], out[0], scale, antialias), device=device, dtype=dtype)
    cols = torch.tensor(resize_weights(in_size[1], out[1], scale, antialias), device=device, dtype=dtype)
    return rows, cols


def torch_imresize(x, scale: float, *, antialias: bool = True):
    """MATLAB bicubic resize of a float tensor [..., H, W] (no rounding; differentiable)."""
    rows, cols = resize_matrices(tuple(x.shape[-2:]), scale, device=x.device, dtype=x.dtype,
                                 antialias=antialias)
    return rows @ x @ cols.transpose(0, 1)


def downscale(hr, scale: int):
    """LR image from an HR uint8 image [C,H,W] (numpy or torch): MATLAB bicubic by 1/scale, uint8.

    The HR image must already be cropped to a multiple of `scale` (see `image_metrics.modcrop`).
    """
    is_torch = type(hr).__module__.startswith("torch")
    arr = hr.cpu().numpy() if is_torch else np.asarray(hr)
    h, w = arr.shape[-2:]
    lr = imresize(arr, size=(h // scale, w // scale))
    if is_torch:
        import torch
        return torch.from_numpy(np.ascontiguousarray(lr))
    return lr
