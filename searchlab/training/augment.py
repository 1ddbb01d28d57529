"""On-device augmentation (no torchvision): batched, every draw from an explicit `torch.Generator`, so a
seed gives the same crops and flips on every device. Used by the trainer and by SR patch sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searchlab.errors import DataError


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by `padding` and crop it back to its size at a random offset (one per image)."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    off = torch.randint(0, 2 * padding + 1, (2, b), generator=gen).to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_rot90(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotate each (square) image by a random multiple of 90 degrees and flip it with p=1/2: the 8 dihedral
    transforms SR training uses. Apply to HR and LR with generators in the same state to keep them aligned."""
    k = torch.randint(0, 4, (x.shape[0],), generator=gen)
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    out = torch.stack([torch.rot90(img, int(r), dims=(1, 2)) for img, r in zip(x, k)])
    return torch.where(flip.to(x.device)[:, None, None, None], out.flip(3), out)


def paired_patches(lr: list[torch.Tensor], hr: list[torch.Tensor], *, scale: int, patch: int, batch_size: int,
                   gen: torch.Generator, device: torch.device | str = "cpu",
                   augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of aligned random LR patches [B,3,patch,patch] and HR patches [B,3,patch*scale,...] (uint8),
    from lists of LR/HR images, with random rot90/flips applied to both. For super-resolution training."""
    if len(lr) != len(hr) or not lr:
        raise DataError(f"need as many LR as HR images (got {len(lr)} and {len(hr)}), at least one")
    pick = torch.randint(0, len(lr), (batch_size,), generator=gen).tolist()
    lrs, hrs = [], []
    for i in pick:
        lo, hi = lr[i], hr[i]
        h, w = lo.shape[-2:]
        if h < patch or w < patch:
            raise DataError(f"LR image {i} is {w}x{h}, smaller than the {patch}px patch; use a smaller patch size")
        y = int(torch.randint(0, h - patch + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - patch + 1, (1,), generator=gen))
        lrs.append(lo[:, y:y + patch, x:x + patch])
        hrs.append(hi[:, y * scale:(y + patch) * scale, x * scale:(x + patch) * scale])
    lo, hi = torch.stack(lrs).to(device, non_blocking=True), torch.stack(hrs).to(device, non_blocking=True)
    if augment:
        state = gen.get_state()
        lo = random_rot90(lo, gen)
        gen.set_state(state)
        hi = random_rot90(hi, gen)
    return lo, hi
