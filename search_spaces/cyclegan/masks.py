"""Channel masks of a generator: one bit per output channel of every conv but the last, the convs that
meet at residual additions sharing one segment; applied in place (masked forward) or cut out
physically (a smaller generator whose output equals the masked one), and repaired to a valid mask."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from searchlab import io
from searchlab.errors import DataError, InvalidArchitecture
from searchlab.search_spaces.cyclegan.networks import ResnetGenerator, param_count


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
        value = io.parse_json(text)
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


def mask_params(bits: np.ndarray, gen: ResnetGenerator) -> int:
    """Parameters left by a bool mask array (fast enough to call inside repair loops)."""
    widths = [int(s.sum()) for s in np.split(np.asarray(bits, dtype=bool), np.cumsum(gen.widths)[:-1])]
    return param_count(widths, gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch, affine=gen.affine, bias=gen.bias)


def pruned_shape(gen: ResnetGenerator, bits: str) -> ResnetGenerator:
    """An uninitialised (meta) generator with the widths that `bits` keeps, for counting only."""
    widths = [int(s.sum()) for s in split_mask(bits, gen)]
    with torch.device("meta"):
        return ResnetGenerator(widths, gen.n_blocks, in_ch=gen.in_ch, out_ch=gen.out_ch, affine=gen.affine,
                               bias=gen.bias)


def repair(bits: np.ndarray, gen: ResnetGenerator, rng: np.random.Generator) -> str:
    """A valid bit string: every segment keeps a channel (an empty one gets a random bit back)."""
    bits = np.array(bits, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(gen.widths)[:-1]])
    for start, width in zip(starts, gen.widths):
        if not bits[start:start + width].any():
            bits[start + int(rng.integers(width))] = True
    return "".join("1" if b else "0" for b in bits)


def mut_flip_segment(bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's mutation: invert every bit between two random positions."""
    out = np.array(bits, dtype=bool)
    lo, hi = sorted(int(i) for i in rng.integers(0, len(out), 2))
    out[lo:hi] = ~out[lo:hi]
    return out
