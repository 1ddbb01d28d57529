"""Reading CycleGAN checkpoints: a state dict (no unpickling), its widths and depth inferred from tensor
shapes, loaded strictly; and the G_A/G_B/D_A/D_B files of a checkpoint folder."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from searchlab import io
from searchlab.errors import DataError
from searchlab.search_spaces.cyclegan.networks import PatchDiscriminator, ResnetGenerator


_LAYOUT_HINT = ("expected a CycleGAN ResnetGenerator state_dict (model.1.weight [ngf,3,7,7], "
                "model.N.block.* or model.N.conv_block.* residual blocks)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint's tensors without unpickling code, normalising the known naming variants."""
    raw = io.read_state_dict(path, "checkpoint")
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
