"""SR image pairs and scores: HR folders -> (LR, HR) pairs made with MATLAB-compatible bicubic, bicubic
upscaling, running a network on an LR image, and mean PSNR/SSIM on the Y channel with `scale` pixels shaved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from searchlab.errors import DataError
from searchlab.training.image_metrics import modcrop, psnr, ssim
from searchlab.training.imresize import downscale, imresize


def _names(folder: Path) -> list[str]:
    from searchlab.training.data import IMAGE_SUFFIXES

    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def load_pairs(folder: str, scale: int) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    """(names, LR images, HR images cropped to a multiple of scale) of an HR folder, uint8 [3,H,W]."""
    from searchlab.training.data import load_hr_folder

    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"{folder} is not a folder; pass a folder of HR images (png/jpg)")
    hrs = [modcrop(hr, scale) for hr in load_hr_folder(path)]
    names = _names(path)
    for name, hr in zip(names, hrs):
        if min(hr.shape[-2:]) < 4 * scale:
            raise DataError(f"{path / name} is only {hr.shape[-1]}x{hr.shape[-2]}; SR needs images of at least "
                            f"{4 * scale}px per side; remove it")
    return names, [downscale(hr, scale) for hr in hrs], hrs


def centre_crop(hr: torch.Tensor, size: int, scale: int) -> torch.Tensor:
    size -= size % scale
    h, w = hr.shape[-2:]
    if size <= 0 or (h <= size and w <= size):
        return hr
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return modcrop(hr[:, top:top + size, left:left + size], scale)


def upscale_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic upscaling of a uint8 LR image [3,h,w] (the 'bicubic' baseline of the tables)."""
    return torch.from_numpy(np.ascontiguousarray(imresize(lr.numpy(), scale)))


@torch.no_grad()
def super_resolve(net: torch.nn.Module, lr: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Run an SR network on a uint8 LR image [3,h,w]; returns a uint8 SR image [3,sh,sw]."""
    from searchlab.training.trainer import to_float

    net.eval()
    y = net(to_float(lr[None].to(device)))[0]
    return ((y.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def score_images(net: torch.nn.Module | None, lrs: list[torch.Tensor], hrs: list[torch.Tensor], scale: int,
                 device: torch.device | str = "cpu", with_ssim: bool = True) -> dict[str, float]:
    """Mean PSNR/SSIM (Y channel, `scale` pixels shaved) of a network, or of bicubic when net is None."""
    ps, ss = [], []
    for lr, hr in zip(lrs, hrs):
        sr = upscale_bicubic(lr, scale) if net is None else super_resolve(net, lr, device)
        ps.append(float(psnr(sr, hr, border=scale)))
        if with_ssim:
            ss.append(float(ssim(sr, hr, border=scale)))
    out = {"psnr": float(np.mean(ps))}
    if with_ssim:
        out["ssim"] = float(np.mean(ss))
    return out
