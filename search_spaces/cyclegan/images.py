"""Unpaired image sets (trainA/trainB/testA/testB), crops, [-1, 1] <-> uint8 conversion, and how close a
pruned generator's outputs are to the full one's (PSNR on the [-1, 1] scale)."""

from __future__ import annotations

from pathlib import Path

import torch

from searchlab.errors import DataError
from searchlab.training.image_metrics import psnr, psnr_from_mse
from searchlab.search_spaces.cyclegan.networks import ResnetGenerator, SIDES


def center_crop(x: torch.Tensor, crop: int, where: str = "the images") -> torch.Tensor:
    """The central crop x crop window of uint8 images [N,3,H,W] (all of them when crop is 0)."""
    if not crop or len(x) == 0:
        return x
    h, w = x.shape[2:]
    if crop > min(h, w):
        raise DataError(f"--crop {crop} is larger than the images in {where} ({w}x{h}); use at most {min(h, w)}")
    top, left = (h - crop) // 2, (w - crop) // 2
    return x[:, :, top:top + crop, left:left + crop].contiguous()


def _stack(images: list[torch.Tensor], where: str) -> torch.Tensor:
    if not images:
        return torch.empty(0, 3, 1, 1, dtype=torch.uint8)
    sizes = {tuple(im.shape[1:]) for im in images}
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for h, w in sorted(sizes)[:3])
        raise DataError(f"images of mixed sizes in {where} ({shown}); resize them to one size first")
    return torch.stack(images)


def read_unpaired(path: str | Path, crop: int = 0) -> dict[str, torch.Tensor]:
    """uint8 [N,3,H,W] tensors for trainA/trainB/testA/testB, centre-cropped to `crop` when > 0.

    Reads with the shared CycleGAN folder reader; the images of one folder must share one size (the
    generators are scored on them as one tensor).
    """
    from searchlab.training.data import load_unpaired

    parts = load_unpaired(path)
    out = {name: center_crop(_stack(list(images), f"{Path(path) / name}"), crop, f"{Path(path) / name}")
           for name, images in parts.items()}
    for side in SIDES:
        if len(out[f"train{side}"]) == 0:
            raise DataError(f"{Path(path) / f'train{side}'} holds no images; put the domain-{side} images there")
    return out


def random_crops(images: torch.Tensor, crop: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """n random crop x crop windows (of random images) with random horizontal flips, as CycleGAN trains."""
    h, w = images.shape[2:]
    crop = crop or min(h, w)
    out = []
    for _ in range(n):
        i = int(torch.randint(len(images), (), generator=gen))
        top = int(torch.randint(h - crop + 1, (), generator=gen))
        left = int(torch.randint(w - crop + 1, (), generator=gen))
        x = images[i, :, top:top + crop, left:left + crop]
        out.append(x.flip(-1) if bool(torch.rand((), generator=gen) < 0.5) else x)
    return torch.stack(out)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the generators' range."""
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def compare_outputs(full: ResnetGenerator, small: ResnetGenerator, images: torch.Tensor,
                    device: str | torch.device = "cpu") -> dict:
    """PSNR (dB, mean and per image) and MSE of `small`'s outputs against `full`'s on uint8 images."""
    per_image, mse = [], 0.0
    full, small = full.to(device).eval(), small.to(device).eval()
    with torch.no_grad():
        for i in range(len(images)):
            x = to_unit(images[i:i + 1]).to(device)
            a, b = full(x), small(x)
            per_image.append(float(psnr(b, a, y_channel=False, data_range=2.0)))
            mse += float(torch.mean((a - b) ** 2))
    mse /= max(len(images), 1)
    return {"psnr": psnr_from_mse(mse, data_range=2.0), "mse": mse, "psnr_per_image": per_image, "images": len(images)}
