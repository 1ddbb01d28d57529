"""CycleGAN generators as a channel-mask search space (Shu et al., ICCV 2019).

The networks are the CycleGAN reference ResnetGenerator and PatchGAN (NLayer) discriminator, laid out
as `model.N.*` so the widely used checkpoints load directly. A genome holds one bit per output channel
of every generator conv except the last; all convs whose outputs meet at the residual additions (the
second downsampling and every residual-block conv) share one segment, so for ngf 64 a mask has
64 + 128 + 256 + 128 + 64 = 640 bits. A mask can be applied in place (masked forward, for scoring) or
cut out physically (a smaller generator whose output equals the masked one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from searchlab.errors import ConfigError, DataError, InvalidArchitecture
from searchlab.options import opt

SIDES = ("A", "B")


# ------------------------------------------------------------------------------------------------
# networks
# ------------------------------------------------------------------------------------------------

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
        m, n = self.model, self.n_blocks
        out = [m[1], m[4], m[7]]
        for b in range(n):
            out += [m[10 + b].block[1], m[10 + b].block[5]]
        return out + [m[10 + n], m[13 + n]]

    def norms(self) -> list[nn.Module]:
        """The InstanceNorm after each conv of `convs()`; masks are applied to their outputs."""
        m, n = self.model, self.n_blocks
        out = [m[2], m[5], m[8]]
        for b in range(n):
            out += [m[10 + b].block[2], m[10 + b].block[6]]
        return out + [m[11 + n], m[14 + n]]

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


# ------------------------------------------------------------------------------------------------
# checkpoints (weights only)
# ------------------------------------------------------------------------------------------------

_LAYOUT_HINT = ("expected a CycleGAN ResnetGenerator state_dict (model.1.weight [ngf,3,7,7], "
                "model.N.block.* or model.N.conv_block.* residual blocks)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint's tensors without unpickling code, normalising the known naming variants."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"checkpoint {p} does not exist; pass the path of a .pth state_dict")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            raw = load_file(str(p))
        else:
            raw = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the user's file
        raise DataError(f"cannot read checkpoint {p} as a weights-only state_dict: "
                        f"{str(exc).splitlines()[0][:160]}") from None
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise DataError(f"checkpoint {p} does not hold a state_dict of tensors")
    out = {}
    for key, value in raw.items():
        key = key.removeprefix("module.").replace(".conv_block.", ".block.")
        if key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
            continue  # old InstanceNorm checkpoints saved (unused) running statistics
        out[key] = value.float()
    return out


def generator_from_state_dict(state: dict[str, torch.Tensor], where: str = "checkpoint") -> ResnetGenerator:
    """Infer the generator's widths, depth and norm kind from tensor shapes, then load strictly."""
    try:
        first = state["model.1.weight"]
        n_blocks = len({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.block\.", k))})
        if first.ndim != 4 or first.shape[2:] != (7, 7) or n_blocks == 0:
            raise KeyError
        widths = (first.shape[0], state["model.4.weight"].shape[0], state["model.7.weight"].shape[0],
                  state[f"model.{10 + n_blocks}.weight"].shape[1], state[f"model.{13 + n_blocks}.weight"].shape[1])
        out_ch = state[f"model.{17 + n_blocks}.weight"].shape[0]
    except KeyError:
        raise DataError(f"{where} is not a CycleGAN ResnetGenerator; {_LAYOUT_HINT}") from None
    gen = ResnetGenerator(widths, n_blocks, in_ch=first.shape[1], out_ch=out_ch,
                          affine="model.2.weight" in state, bias="model.1.bias" in state)
    _load_strict(gen, state, where)
    return gen.eval()


def discriminator_from_state_dict(state: dict[str, torch.Tensor], where: str = "checkpoint") -> PatchDiscriminator:
    """Infer a PatchGAN's ndf and depth from its conv shapes, then load strictly."""
    convs = sorted((int(m.group(1)), v.shape) for k, v in state.items()
                   if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and v.ndim == 4)
    if len(convs) < 3 or convs[0][1][2:] != (4, 4) or convs[-1][1][0] != 1:
        raise DataError(f"{where} is not a CycleGAN PatchGAN discriminator; expected 4x4 convs model.0, model.2, "
                        f"... ending in one output channel")
    disc = PatchDiscriminator(convs[0][1][1], convs[0][1][0], len(convs) - 2,
                              affine=any(k == f"model.{convs[1][0] + 1}.weight" for k in state),
                              bias=f"model.{convs[1][0]}.bias" in state)
    _load_strict(disc, state, where)
    return disc.eval()


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise DataError(f"{where} does not match the CycleGAN layout it looks like: {detail[:200]}") from None


def load_generator(path: str | Path) -> ResnetGenerator:
    return generator_from_state_dict(read_state_dict(path), where=str(path))


def load_discriminator(path: str | Path) -> PatchDiscriminator:
    return discriminator_from_state_dict(read_state_dict(path), where=str(path))


def find_checkpoints(path: str | Path) -> dict[str, Path]:
    """The G_A/G_B/D_A/D_B files of a CycleGAN checkpoint folder (`latest_net_G_A.pth`, ...).

    A single .pth file is taken as G_A alone. G_A maps A to B and D_A judges G_A's outputs (the
    reference code's naming); `netG_A2B.pth`/`netD_B.pth` style folders are mapped onto it.
    """
    p = Path(path)
    if p.is_file():
        return {"G_A": p}
    if not p.is_dir():
        raise DataError(f"checkpoint folder {p} does not exist; pass a folder with latest_net_G_A.pth "
                        f"(and G_B, D_A, D_B) or one generator .pth file")
    files = sorted((q for q in p.iterdir() if q.suffix in (".pth", ".pt", ".safetensors")),
                   key=lambda q: (not q.stem.startswith("latest"), q.name))

    def first(*suffixes: str) -> Path | None:
        return next((q for q in files if any(q.stem.endswith(x) for x in suffixes)), None)

    found = {"G_A": first("net_G_A", "G_A"), "G_B": first("net_G_B", "G_B"),
             "D_A": first("net_D_A", "D_A"), "D_B": first("net_D_B", "D_B")}
    if found["G_A"] is None and first("G_A2B") is not None:
        # the A2B/B2A naming (netG_A2B.pth) calls the discriminator of domain B, which judges G_A2B, netD_B
        found = {"G_A": first("G_A2B"), "G_B": first("G_B2A"), "D_A": first("D_B"), "D_B": first("D_A")}
    found = {k: v for k, v in found.items() if v is not None}
    if "G_A" not in found:
        raise DataError(f"no generator checkpoint in {p}; expected latest_net_G_A.pth (and latest_net_G_B.pth, "
                        f"latest_net_D_A.pth, latest_net_D_B.pth)")
    return found


# ------------------------------------------------------------------------------------------------
# masks: genome layout, masked forward, physical pruning
# ------------------------------------------------------------------------------------------------

def segment_sizes(gen: ResnetGenerator) -> list[int]:
    return list(gen.widths)


def genome_length(gen: ResnetGenerator) -> int:
    return sum(gen.widths)


def split_mask(bits: str, gen: ResnetGenerator) -> list[np.ndarray]:
    """The five segment masks (bool arrays) of a bit string; checks length, alphabet and non-empty segments."""
    if not isinstance(bits, str) or set(bits) - {"0", "1"}:
        raise InvalidArchitecture("a CycleGAN mask is a string of 0/1 characters")
    if len(bits) != genome_length(gen):
        raise InvalidArchitecture(f"mask has {len(bits)} bits but this generator needs {genome_length(gen)} "
                                  f"(segments {'+'.join(map(str, gen.widths))})")
    arr = np.frombuffer(bits.encode(), dtype=np.uint8) == ord("1")
    cuts = np.cumsum(gen.widths)[:-1]
    segments = np.split(arr, cuts)
    for i, seg in enumerate(segments):
        if not seg.any():
            raise InvalidArchitecture(f"mask segment {i} keeps no channel; every segment needs at least one")
    return segments


def layer_masks(bits: str, gen: ResnetGenerator) -> list[np.ndarray]:
    """One bool mask per conv of `gen.convs()` (residual layers repeat segment 2)."""
    segments = split_mask(bits, gen)
    return [segments[s] for s in gen.layer_segments()]


def channels_pruned(bits: str, gen: ResnetGenerator) -> int:
    """Output channels removed over all masked layers (the size term of the paper's fitness)."""
    return int(sum((~m).sum() for m in layer_masks(bits, gen)))


def full_mask(gen: ResnetGenerator) -> str:
    return "1" * genome_length(gen)


@contextlib.contextmanager
def masked(gen: ResnetGenerator, bits: str) -> Iterator[ResnetGenerator]:
    """Run `gen` with the mask applied in place: pruned channels are zeroed after their norm."""
    handles = []
    try:
        for norm, mask in zip(gen.norms(), layer_masks(bits, gen)):
            weight = torch.as_tensor(mask, dtype=torch.float32).view(1, -1, 1, 1)
            handles.append(norm.register_forward_hook(
                lambda _m, _i, out, w=weight: out * w.to(out.device, out.dtype)))
        yield gen
    finally:
        for h in handles:
            h.remove()


def prune(gen: ResnetGenerator, bits: str) -> ResnetGenerator:
    """A physically smaller generator whose output equals `gen` run with mask `bits`."""
    segments = split_mask(bits, gen)
    keep = [torch.as_tensor(np.flatnonzero(s)) for s in segments]
    with torch.device("meta"):  # every tensor is overwritten below, so skip the random initialisation
        small = ResnetGenerator([len(k) for k in keep], gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch,
                                affine=gen.affine, bias=gen.bias)
    device = next(gen.parameters()).device
    small = small.to_empty(device=device)
    keep = [k.to(device) for k in keep]
    seg_of = gen.layer_segments()
    prev = torch.arange(gen.in_ch, device=device)
    with torch.no_grad():
        for i, (src, dst, snorm, dnorm) in enumerate(zip(gen.convs(), small.convs(), gen.norms(), small.norms())):
            out = keep[seg_of[i]]
            if isinstance(src, nn.ConvTranspose2d):  # weight [in, out, k, k]
                dst.weight.copy_(src.weight[prev][:, out])
            else:  # weight [out, in, k, k]
                dst.weight.copy_(src.weight[out][:, prev])
            if src.bias is not None:
                dst.bias.copy_(src.bias[out])
            if snorm.affine:
                dnorm.weight.copy_(snorm.weight[out])
                dnorm.bias.copy_(snorm.bias[out])
            prev = out  # every residual conv reads and writes segment 2, so the chain stays sequential
        last_src, last_dst = gen.model[17 + gen.n_blocks], small.model[17 + gen.n_blocks]
        last_dst.weight.copy_(last_src.weight[:, prev])
        last_dst.bias.copy_(last_src.bias)
    return small.eval()


def read_mask_file(path: str | Path, gen: ResnetGenerator, side: str = "A") -> str:
    """A mask from a file: a 0/1 string, a JSON string or list of 0/1, or a JSON object keyed by side
    (a run's `cyclegan/masks.json`). Checked against `gen` (length, one channel per segment)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"mask file {p} does not exist")
    text = p.read_text(encoding="utf-8", errors="replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict):
        if side not in value:
            raise DataError(f"mask file {p} has no mask for side {side!r} (it has {', '.join(map(str, value))})")
        value = value[side]
    if isinstance(value, list):
        value = "".join(str(int(v)) for v in value if isinstance(v, (int, float, bool)))
    bits = "".join(str(value).split())
    try:
        split_mask(bits, gen)
    except InvalidArchitecture as exc:
        raise DataError(f"mask file {p}: {exc}") from None
    return bits


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


def mask_params(bits: np.ndarray, gen: ResnetGenerator) -> int:
    """Parameters left by a bool mask array (fast enough to call inside repair loops)."""
    widths = [int(s.sum()) for s in np.split(np.asarray(bits, dtype=bool), np.cumsum(gen.widths)[:-1])]
    return param_count(widths, gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch, affine=gen.affine, bias=gen.bias)


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


def pruned_shape(gen: ResnetGenerator, bits: str) -> ResnetGenerator:
    """An uninitialised (meta) generator with the widths that `bits` keeps, for counting only."""
    widths = [int(s.sum()) for s in split_mask(bits, gen)]
    with torch.device("meta"):
        return ResnetGenerator(widths, gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch, affine=gen.affine,
                               bias=gen.bias)


# ------------------------------------------------------------------------------------------------
# images (CycleGAN folder layout)
# ------------------------------------------------------------------------------------------------

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
    from searchlab.data import load_unpaired

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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = float(torch.mean((a.float() - b.float()) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def compare_outputs(full: ResnetGenerator, small: ResnetGenerator, images: torch.Tensor,
                    device: str | torch.device = "cpu") -> dict:
    """PSNR (dB, mean and per image) and MSE of `small`'s outputs against `full`'s on uint8 images."""
    per_image, mse = [], 0.0
    full, small = full.to(device).eval(), small.to(device).eval()
    with torch.no_grad():
        for i in range(len(images)):
            x = to_unit(images[i:i + 1]).to(device)
            a, b = full(x), small(x)
            per_image.append(psnr(b, a))
            mse += float(torch.mean((a - b) ** 2))
    mse /= max(len(images), 1)
    return {"psnr": psnr_from_mse(mse), "mse": mse, "psnr_per_image": per_image, "images": len(images)}


def psnr_from_mse(mse: float) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(4.0 / mse))


# ------------------------------------------------------------------------------------------------
# the search space
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CycleganConfig:
    """CycleGAN co-evolution space: checkpoints, data and final fine-tuning"""

    checkpoints: str = opt("", help="folder with latest_net_G_A.pth, G_B, D_A, D_B (or one generator .pth); e.g. "
                           "searchlab search cyclegan --checkpoints ckpt/h2z --data datasets/h2z --crop 64 "
                           "--population 8 --generations 3 --run runs/h2z")
    data: str = opt("", help="CycleGAN data folder with trainA/, trainB/ (testA/, testB/ for the report)")
    crop: int = opt(64, help="centre-crop images to this size (0: full size); small crops keep CPU runs short")
    val_images: int = opt(8, help="images per side used to score fitness (from trainA/trainB)")
    init_keep: float = opt(0.5, help="probability that a bit of a random initial mask keeps its channel")
    min_compression: float = opt(1.0, help="keep at most 1/N of each generator's parameters: masks over it lose "
                                 "random channels (1: no limit)")
    finetune_steps: int = opt(100, help="final fine-tuning steps of the best pair (0: skip)")
    finetune_lr: float = opt(2e-4, help="Adam learning rate of fine-tuning (betas 0.5/0.999)")
    batch_size: int = opt(1, help="images per fine-tuning step")

    def __post_init__(self) -> None:
        if not self.checkpoints:
            raise ConfigError("cyclegan needs --checkpoints DIR (a CycleGAN checkpoint folder or a generator .pth)")
        if not self.data:
            raise ConfigError("cyclegan needs --data DIR (a folder with trainA/ and trainB/)")
        if self.crop < 0 or self.crop % 4:
            raise ConfigError(f"--crop must be 0 or a positive multiple of 4, got {self.crop}")
        if self.val_images < 1:
            raise ConfigError("--val-images must be at least 1")
        if not 0 < self.init_keep <= 1:
            raise ConfigError(f"--init-keep must be in (0, 1], got {self.init_keep}")
        if self.min_compression < 1:
            raise ConfigError(f"--min-compression must be >= 1 (1: no limit), got {self.min_compression}")
        if self.finetune_steps < 0 or self.batch_size < 1 or self.finetune_lr <= 0:
            raise ConfigError("--finetune-steps must be >= 0, --batch-size >= 1 and --finetune-lr > 0")


class CycleganSpace:
    """Genomes `{"side": "A"|"B", "mask": bits, "partner": bits|None}`.

    `mask` prunes the generator of `side`; `partner` is the other side's mask held fixed while this one
    is scored (None when only one generator exists or in the first generation). Including the partner
    makes a genome's score a pure function of the genome, as the run store's de-duplication needs.
    """

    name = "cyclegan"

    def __init__(self, generators: dict[str, ResnetGenerator], discriminators: dict[str, PatchDiscriminator],
                 images: dict[str, torch.Tensor], *, init_keep: float = 0.5, min_compression: float = 1.0,
                 flops_size: int = 256, config: CycleganConfig | None = None,
                 train_pool: dict[str, torch.Tensor] | None = None, crop: int = 0) -> None:
        self.generators, self.discriminators, self.images = generators, discriminators, images
        self.config, self.crop = config, crop
        # fine-tuning draws random crops from the uncropped training images
        self.train_pool = train_pool or {s: images[f"train{s}"] for s in SIDES if f"train{s}" in images}
        self.sides = tuple(s for s in SIDES if s in generators)
        self.init_keep, self.min_compression, self.flops_size = init_keep, min_compression, flops_size
        self._full = {s: describe_generator(g, flops_size) for s, g in generators.items()}

    @classmethod
    def from_config(cls, config: CycleganConfig) -> "CycleganSpace":
        paths = find_checkpoints(config.checkpoints)
        gens = {s: load_generator(paths["G_" + s]) for s in SIDES if "G_" + s in paths}
        discs = {s: load_discriminator(paths["D_" + s]) for s in SIDES if "D_" + s in paths and s in gens}
        raw = read_unpaired(config.data)
        images = {name: center_crop(x, config.crop, str(Path(config.data) / name)) for name, x in raw.items()}
        return cls(gens, discs, images, init_keep=config.init_keep, min_compression=config.min_compression,
                   config=config, train_pool={s: raw[f"train{s}"] for s in SIDES}, crop=config.crop)

    def other(self, side: str) -> str | None:
        o = "B" if side == "A" else "A"
        return o if o in self.generators else None

    def random_mask(self, side: str, rng: np.random.Generator) -> str:
        gen = self.generators[side]
        bits = rng.random(genome_length(gen)) < self.init_keep
        return self.repair(side, bits, rng)

    def repair(self, side: str, bits: np.ndarray, rng: np.random.Generator) -> str:
        return repair(bits, self.generators[side], rng, self.min_compression)

    def sample(self, rng: np.random.Generator) -> dict:
        return {"side": "A", "mask": self.random_mask("A", rng), "partner": None}

    def mutate(self, genome: dict, rng: np.random.Generator) -> dict:
        g = self.validate(genome)
        bits = np.frombuffer(g["mask"].encode(), dtype=np.uint8) == ord("1")
        return {**g, "mask": self.repair(g["side"], mut_flip_segment(bits, rng), rng)}

    def validate(self, genome: dict) -> dict:
        if not isinstance(genome, dict) or genome.get("side") not in SIDES or "mask" not in genome:
            raise InvalidArchitecture('a CycleGAN genome is {"side": "A"|"B", "mask": "0101...", "partner": ...}')
        side = genome["side"]
        if side not in self.generators:
            raise InvalidArchitecture(f"genome prunes generator {side} but no G_{side} checkpoint was loaded")
        split_mask(genome["mask"], self.generators[side])
        partner = genome.get("partner")
        if partner is not None:
            other = self.other(side)
            if other is None:
                raise InvalidArchitecture("genome has a partner mask but only one generator was loaded")
            split_mask(partner, self.generators[other])
        return {"side": side, "mask": genome["mask"], "partner": partner}

    def key(self, genome: dict) -> str:
        g = self.validate(genome)
        digest = hashlib.sha1(f"{g['mask']}|{g['partner'] or ''}".encode()).hexdigest()[:16]
        return f"{g['side']}:{digest}"

    def describe(self, genome: dict) -> dict:
        g = self.validate(genome)
        gen = self.generators[g["side"]]
        small = pruned_shape(gen, g["mask"])
        params = count_params(small)
        full = self._full[g["side"]]
        return {"side": g["side"], "params": params, "size_mb": round(size_mb(params), 3),
                "flops": count_flops(small, self.flops_size), "widths": list(small.widths),
                "kept_bits": g["mask"].count("1"), "channels_pruned": channels_pruned(g["mask"], gen),
                "param_ratio": full["params"] / params}

    def full_description(self, side: str) -> dict:
        return dict(self._full[side])


def repair(bits: np.ndarray, gen: ResnetGenerator, rng: np.random.Generator, min_compression: float = 1.0) -> str:
    """A valid bit string: every segment keeps a channel (an empty one gets a random bit back), and with
    `min_compression` > 1 random kept channels are dropped until at most 1/min_compression of the
    generator's parameters remain."""
    bits = np.array(bits, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(gen.widths)[:-1]])
    for start, width in zip(starts, gen.widths):
        if not bits[start:start + width].any():
            bits[start + int(rng.integers(width))] = True
    if min_compression > 1:
        budget = count_params(gen) / min_compression
        while mask_params(bits, gen) > budget:
            seg_of = np.repeat(np.arange(len(gen.widths)), gen.widths)
            counts = np.bincount(seg_of[bits], minlength=len(gen.widths))
            droppable = np.flatnonzero(bits & (counts[seg_of] > 1))
            if len(droppable) == 0:
                break
            drop = rng.choice(droppable, size=max(1, len(droppable) // 64), replace=False)
            for i in drop:  # re-check per bit so a segment never empties
                if bits[seg_of == seg_of[i]].sum() > 1:
                    bits[i] = False
    return "".join("1" if b else "0" for b in bits)


def mut_flip_segment(bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's mutation: invert every bit between two random positions."""
    out = np.array(bits, dtype=bool)
    lo, hi = sorted(int(i) for i in rng.integers(0, len(out), 2))
    out[lo:hi] = ~out[lo:hi]
    return out
