"""Efficient residual dense blocks and the super-resolution backbone they are searched in (ESRN).

Song et al., "Efficient Residual Dense Block Search for Image Super-Resolution", AAAI 2020.

Backbone (all convs at LR resolution unless said): shallow features F-1 = conv3x3(3 -> G0),
F0 = conv3x3(G0 -> G0); a chain of the used blocks; global feature fusion conv1x1(concat of every
block output -> G0) then conv3x3(G0 -> G0), plus F-1; upsampler conv3x3(G0 -> 3 s^2) + PixelShuffle(s);
plus (option `skip="bicubic"`) the MATLAB-bicubic upscaled input, so the net learns a residual.

Genome: {"blocks": [slot, ...]} with `slots` entries, each {"used": 0|1, "type": "SRDB"|"GRDB"|"CRDB",
"convs": 4|6|8, "growth": 8|16|24|32, "out": output channels}. Unused slots keep their genes (they can
be switched back on by mutation) but do not change the network; `key` only looks at used blocks.

Blocks (input channels c, C convs, growth g, output channels o; every block ends with a local
fusion conv1x1 to o and adds its input when c == o):
- SRDB, shrink: dense layer j = conv1x1(c + j g -> g) on the dense concatenation, then
  conv3x3(g -> g) + ReLU. The 3x3 convs stay g -> g whatever the depth.
- GRDB, group: dense layer j = group conv3x3(c + j g -> g, `groups` groups) + ReLU + channel shuffle.
- CRDB, contextual: 2x2 average pooling, dense layers conv3x3(c + j g -> g) + ReLU at half
  resolution, fusion conv1x1(c + C g -> 4 o) and PixelShuffle(2) back to full resolution.
- RDB, the plain residual dense block of RDN (dense conv3x3(c + j g -> g) + ReLU); not searched,
  used by the hand-designed baseline.

Closed forms (a conv k x k, a -> b channels, `grp` groups: k^2 a b / grp weights + b biases, and as many
mult-adds per output pixel as weights): see `conv_specs`; mult-adds count convolutions only, as papers do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from searchlab.errors import ConfigError, InvalidArchitecture

BLOCK_TYPES = ("SRDB", "GRDB", "CRDB")
CONVS = (4, 6, 8)
GROWTHS = (8, 16, 24, 32)
OUTS = (16, 24, 32, 48, 64)
GENES = ("used", "type", "convs", "growth", "out")
SCALES = (2, 3, 4)
PAPER_OUTPUT = (720, 1280)  # mult-adds are reported for a 1280x720 output image


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: in/out channels, kernel, groups, and its resolution relative to the LR input."""

    cin: int
    cout: int
    k: int
    groups: int = 1
    area: float = 1.0  # 0.25 at half resolution

    @property
    def params(self) -> int:
        return self.k * self.k * self.cin // self.groups * self.cout + self.cout

    @property
    def macs_per_pixel(self) -> float:
        return self.k * self.k * self.cin // self.groups * self.cout * self.area


# --------------------------------------------------------------------------------------------------
# genome helpers
# --------------------------------------------------------------------------------------------------

def used_blocks(genome: dict) -> list[dict]:
    return [b for b in genome["blocks"] if b["used"]]


def block_label(block: dict) -> str:
    return f"{block['type']}-{block['convs']}x{block['growth']}-{block['out']}"


def block_specs(block: dict, cin: int, groups: int) -> list[ConvSpec]:
    """The convolutions of one block with `cin` input channels, in forward order."""
    kind, n, g, out = block["type"], int(block["convs"]), int(block["growth"]), int(block["out"])
    specs: list[ConvSpec] = []
    for j in range(n):
        width = cin + j * g
        if kind == "SRDB":
            specs += [ConvSpec(width, g, 1), ConvSpec(g, g, 3)]
        elif kind == "GRDB":
            specs.append(ConvSpec(width, g, 3, groups))
        elif kind == "CRDB":
            specs.append(ConvSpec(width, g, 3, 1, 0.25))
        elif kind == "RDB":
            specs.append(ConvSpec(width, g, 3))
        else:
            raise InvalidArchitecture(f"unknown block type {kind!r}; use one of {', '.join(BLOCK_TYPES)}")
    if kind == "CRDB":
        specs.append(ConvSpec(cin + n * g, 4 * out, 1, 1, 0.25))
    else:
        specs.append(ConvSpec(cin + n * g, out, 1))
    return specs


def conv_specs(genome: dict, *, g0: int, scale: int, groups: int = 4, colors: int = 3) -> list[ConvSpec]:
    """Every convolution of the network, backbone included."""
    specs = [ConvSpec(colors, g0, 3), ConvSpec(g0, g0, 3)]
    cin, outs = g0, 0
    for block in used_blocks(genome):
        specs += block_specs(block, cin, groups)
        cin = int(block["out"])
        outs += cin
    specs += [ConvSpec(outs, g0, 1), ConvSpec(g0, g0, 3), ConvSpec(g0, colors * scale * scale, 3)]
    return specs


def count_params(genome: dict, **kw: Any) -> int:
    return sum(s.params for s in conv_specs(genome, **kw))


def count_mult_adds(genome: dict, *, scale: int, output: tuple[int, int] = PAPER_OUTPUT, **kw: Any) -> float:
    """Convolution mult-adds to produce an `output` (H, W) image, i.e. from an (H/s, W/s) input."""
    per_pixel = sum(s.macs_per_pixel for s in conv_specs(genome, scale=scale, **kw))
    return per_pixel * output[0] * output[1] / (scale * scale)


# --------------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------------

def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: interleave the channels of `groups` groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class DenseBlock(nn.Module):
    """One SRDB, GRDB, CRDB or RDB block (see the module docstring)."""

    def __init__(self, block: dict, cin: int, groups: int = 4) -> None:
        super().__init__()
        self.kind, self.groups = block["type"], groups
        self.residual = cin == int(block["out"])
        specs = block_specs(block, cin, groups)
        convs = [nn.Conv2d(s.cin, s.cout, s.k, padding=s.k // 2, groups=s.groups) for s in specs]
        self.layers = nn.ModuleList(convs[:-1])
        self.fuse = convs[-1]

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        step = 2 if self.kind == "SRDB" else 1
        for i in range(0, len(self.layers), step):
            h = torch.cat(feats, 1) if len(feats) > 1 else feats[0]
            if self.kind == "SRDB":
                y = F.relu(self.layers[i + 1](self.layers[i](h)))
            else:
                y = F.relu(self.layers[i](h))
                if self.kind == "GRDB":
                    y = channel_shuffle(y, self.groups)
            feats.append(y)
        return self.fuse(torch.cat(feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "CRDB":
            h, w = x.shape[-2:]
            padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
            y = F.pixel_shuffle(self._dense(F.avg_pool2d(padded, 2)), 2)[..., :h, :w]
        else:
            y = self._dense(x)
        return y + x if self.residual else y


class SRNet(nn.Module):
    """The backbone with a chain of blocks; input and output are images scaled to [-1, 1]."""

    def __init__(self, genome: dict, *, g0: int = 32, scale: int = 2, groups: int = 4, skip: str = "bicubic",
                 colors: int = 3) -> None:
        super().__init__()
        self.scale, self.skip = scale, skip
        self.sfe1 = nn.Conv2d(colors, g0, 3, padding=1)
        self.sfe2 = nn.Conv2d(g0, g0, 3, padding=1)
        blocks, cin, outs = [], g0, 0
        for block in used_blocks(genome):
            blocks.append(DenseBlock(block, cin, groups))
            cin = int(block["out"])
            outs += cin
        self.blocks = nn.ModuleList(blocks)
        self.gff1 = nn.Conv2d(outs, g0, 1)
        self.gff3 = nn.Conv2d(g0, g0, 3, padding=1)
        self.up = nn.Conv2d(g0, colors * scale * scale, 3, padding=1)
        if skip == "bicubic":  # start as exactly bicubic upscaling; training learns the residual
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from searchlab.imresize import torch_imresize

        f1 = self.sfe1(x)
        f = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            f = block(f)
            outs.append(f)
        f = self.gff3(self.gff1(torch.cat(outs, 1))) + f1
        y = F.pixel_shuffle(self.up(f), self.scale)
        if self.skip == "bicubic":
            y = y + torch_imresize(x, float(self.scale), antialias=False)
        return y


# --------------------------------------------------------------------------------------------------
# mutation operators (plain functions of genome and rng; credits enter as probabilities)
# --------------------------------------------------------------------------------------------------

def _other(choices: tuple, current: Any, rng: np.random.Generator, probs: np.ndarray | None = None) -> Any:
    """A choice different from `current`, uniform or with the given (renormalised) probabilities."""
    options = [c for c in choices if c != current]
    if probs is None:
        return options[int(rng.integers(len(options)))]
    p = np.array([probs[choices.index(c)] for c in options], dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(options), 1.0 / len(options))
    return options[int(rng.choice(len(options), p=p))]


def mut_blocks(genome: dict, rng: np.random.Generator, *, rate: float | None = None,
               type_probs: np.ndarray | None = None, use_probs: np.ndarray | None = None) -> dict:
    """Mutate slots: each gene of each slot changes with probability `rate` (default 1/slots).

    A mutated type gene is redrawn from `type_probs` [len(BLOCK_TYPES)] (uniform when None), so it may
    keep its type; a mutated hyper-parameter always changes. `use_probs` [slots] is the
    probability that a slot is used, and scales its used-bit flip: on with 2 p rate, off with
    2 (1 - p) rate (both equal `rate` at p = 1/2). At least one gene always changes.
    """
    blocks = [dict(b) for b in genome["blocks"]]
    n = len(blocks)
    rate = 1.0 / n if rate is None else rate
    changed = False
    for i, b in enumerate(blocks):
        p_use = 0.5 if use_probs is None else float(use_probs[i])
        flip = rate * 2 * (p_use if not b["used"] else 1 - p_use)
        if rng.random() < min(1.0, flip):
            b["used"], changed = 1 - b["used"], True
        if rng.random() < rate:  # resample the type (credits: favoured types are drawn, and kept, more often)
            p = np.full(len(BLOCK_TYPES), 1 / len(BLOCK_TYPES)) if type_probs is None else np.asarray(type_probs)
            kind = BLOCK_TYPES[int(rng.choice(len(BLOCK_TYPES), p=p / p.sum()))]
            changed = changed or kind != b["type"]
            b["type"] = kind
        for gene, choices in (("convs", CONVS), ("growth", GROWTHS), ("out", OUTS)):
            if rng.random() < rate:
                b[gene], changed = _other(choices, b[gene], rng), True
    if not changed:
        i = int(rng.integers(n))
        gene = GENES[int(rng.integers(len(GENES)))]
        if gene == "used":
            blocks[i]["used"] = 1 - blocks[i]["used"]
        elif gene == "type":
            blocks[i]["type"] = _other(BLOCK_TYPES, blocks[i]["type"], rng, type_probs)
        else:
            choices = {"convs": CONVS, "growth": GROWTHS, "out": OUTS}[gene]
            blocks[i][gene] = _other(choices, blocks[i][gene], rng)
    return {"blocks": blocks}


def random_block(rng: np.random.Generator, used: int) -> dict:
    return {"used": int(used), "type": BLOCK_TYPES[int(rng.integers(len(BLOCK_TYPES)))],
            "convs": int(CONVS[int(rng.integers(len(CONVS)))]),
            "growth": int(GROWTHS[int(rng.integers(len(GROWTHS)))]),
            "out": int(OUTS[int(rng.integers(len(OUTS)))])}


# --------------------------------------------------------------------------------------------------
# the space
# --------------------------------------------------------------------------------------------------

def parse_size(text: str | int | float) -> float:
    """'300k' -> 300000, '1.2M' -> 1200000, '73.4G' -> 7.34e10."""
    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip().lower()
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(t[-1:], 1.0)
    try:
        return float(t[:-1] if t[-1:] in "kmg" else t) * mult
    except ValueError:
        raise ConfigError(f"malformed size {text!r}; write e.g. 300k, 1.2M or 73.4G") from None


def parse_range(text: str) -> tuple[float, float]:
    """'300k:330k' -> (300000, 330000); '' -> no limit."""
    if not text:
        return 0.0, math.inf
    if ":" not in text:
        raise ConfigError(f"malformed range {text!r}; write LOW:HIGH, e.g. --params 300k:330k")
    lo_text, hi_text = text.split(":", 1)
    lo = parse_size(lo_text) if lo_text.strip() else 0.0
    hi = parse_size(hi_text) if hi_text.strip() else math.inf
    if lo < 0 or hi < lo:
        raise ConfigError(f"empty range {text!r}: LOW must be <= HIGH, e.g. --params 300k:330k")
    return lo, hi


class SRBlockSpace:
    """Block chains for x2/x3/x4 super-resolution with a parameter range (and optional mult-add cap)."""

    name = "sr"

    def __init__(self, *, scale: int = 2, g0: int = 32, slots: int = 20, min_blocks: int = 4,
                 params: str = "300k:330k", max_mult_adds: float = 0.0, groups: int = 4,
                 skip: str = "bicubic", repair_tries: int = 3000) -> None:
        if scale not in SCALES:
            raise ConfigError(f"scale must be 2, 3 or 4, got {scale}")
        if g0 < 8 or g0 % groups:
            raise ConfigError(f"g0 must be >= 8 and a multiple of groups ({groups}), got {g0}")
        if not 1 <= min_blocks <= slots:
            raise ConfigError(f"min_blocks must be between 1 and slots ({slots}), got {min_blocks}")
        if skip not in ("bicubic", "none"):
            raise ConfigError(f"skip must be bicubic or none, got {skip!r}")
        self.scale, self.g0, self.slots, self.min_blocks = scale, g0, slots, min_blocks
        self.groups, self.skip, self.repair_tries = groups, skip, repair_tries
        self.params_range = parse_range(params)
        self.params_text = params
        self.max_mult_adds = float(max_mult_adds)
        self._check_reachable()

    # counting -------------------------------------------------------------------------------------
    def params(self, genome: dict) -> int:
        return count_params(genome, g0=self.g0, scale=self.scale, groups=self.groups)

    def mult_adds(self, genome: dict, output: tuple[int, int] = PAPER_OUTPUT) -> float:
        return count_mult_adds(genome, g0=self.g0, scale=self.scale, groups=self.groups, output=output)

    def _check_reachable(self) -> None:
        smallest = {"used": 1, "type": "SRDB", "convs": CONVS[0], "growth": GROWTHS[0], "out": OUTS[0]}
        largest = {"used": 1, "type": "SRDB", "convs": CONVS[-1], "growth": GROWTHS[-1], "out": OUTS[-1]}
        low = min(self.params({"blocks": [dict(smallest, type=t)] * self.min_blocks}) for t in BLOCK_TYPES)
        high = max(self.params({"blocks": [dict(largest, type=t)] * self.slots}) for t in BLOCK_TYPES)
        lo, hi = self.params_range
        if hi < low or lo > high:
            raise ConfigError(f"no network meets --params {self.params_text}: with g0={self.g0}, x{self.scale} "
                              f"and at least {self.min_blocks} blocks they range from about {low / 1e3:.0f}k to "
                              f"{high / 1e3:.0f}k parameters; choose a range inside that")

    def violation(self, genome: dict) -> float:
        """How far a genome is from the constraints (0 = feasible), in relative units."""
        lo, hi = self.params_range
        p = self.params(genome)
        v = max(0.0, (lo - p) / max(lo, 1.0), (p - hi) / max(hi, 1.0))
        if self.max_mult_adds:
            v += max(0.0, self.mult_adds(genome) / self.max_mult_adds - 1.0)
        missing = self.min_blocks - len(used_blocks(genome))
        return v + max(0, missing)

    # protocol ---------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        n_used = int(rng.integers(self.min_blocks, self.slots + 1))
        used = np.zeros(self.slots, dtype=int)
        used[rng.choice(self.slots, size=n_used, replace=False)] = 1
        genome = {"blocks": [random_block(rng, u) for u in used]}
        return self.repair(genome, rng)

    def mutate(self, genome: dict, rng: np.random.Generator) -> dict:
        return self.repair(mut_blocks(self.validate(genome), rng), rng)

    def repair(self, genome: dict, rng: np.random.Generator,
               mutate: Callable[[dict, np.random.Generator], dict] | None = None) -> dict:
        """Mutate repeatedly (keeping a mutant when it is no further from feasible) until the genome
        meets the parameter range, the mult-add cap and the minimum number of blocks."""
        mutate = mutate or mut_blocks
        best, v = genome, self.violation(genome)
        for _ in range(self.repair_tries):
            if v == 0:
                return self.validate(best)
            cand = mutate(best, rng)
            cv = self.violation(cand)
            if cv <= v:
                best, v = cand, cv
        if v == 0:
            return self.validate(best)
        raise ConfigError(f"found no network with params in {self.params_text}"
                          f"{f' and at most {self.max_mult_adds / 1e9:g}G mult-adds' if self.max_mult_adds else ''}"
                          f" after {self.repair_tries} mutations; widen --params or change --g0/--min-blocks")

    def validate(self, genome: Any) -> dict:
        if not isinstance(genome, dict) or not isinstance(genome.get("blocks"), list):
            raise InvalidArchitecture('an SR genome is {"blocks": [slot, ...]}')
        if len(genome["blocks"]) != self.slots:
            raise InvalidArchitecture(f"the genome has {len(genome['blocks'])} slots, the space {self.slots}")
        out = []
        for i, b in enumerate(genome["blocks"]):
            try:
                slot = {"used": int(b["used"]), "type": str(b["type"]), "convs": int(b["convs"]),
                        "growth": int(b["growth"]), "out": int(b["out"])}
            except (KeyError, TypeError, ValueError):
                raise InvalidArchitecture(f"slot {i} needs used, type, convs, growth and out") from None
            for gene, choices in (("used", (0, 1)), ("type", BLOCK_TYPES + ("RDB",)), ("convs", CONVS),
                                  ("growth", GROWTHS), ("out", OUTS)):
                if slot[gene] not in choices:
                    raise InvalidArchitecture(f"slot {i}: {gene} must be one of {choices}, got {slot[gene]!r}")
            out.append(slot)
        if sum(s["used"] for s in out) < 1:
            raise InvalidArchitecture("at least one block must be used")
        return {"blocks": out}

    def key(self, genome: dict) -> str:
        g = self.validate(genome)
        return json.dumps([[b["type"], b["convs"], b["growth"], b["out"]] for b in used_blocks(g)],
                          separators=(",", ":"))

    def describe(self, genome: dict) -> dict:
        g = self.validate(genome)
        return {"params": self.params(g), "mult_adds": self.mult_adds(g), "blocks": len(used_blocks(g)),
                "layout": " ".join(block_label(b) for b in used_blocks(g))}

    def build(self, genome: dict) -> SRNet:
        return SRNet(self.validate(genome), g0=self.g0, scale=self.scale, groups=self.groups, skip=self.skip)


def uniform_chain(kind: str, n: int, *, convs: int, growth: int, out: int, slots: int) -> dict:
    """A genome of `n` identical blocks followed by unused slots (hand-designed baselines)."""
    block = {"used": 1, "type": kind, "convs": convs, "growth": growth, "out": out}
    return {"blocks": [dict(block) for _ in range(n)] + [dict(block, used=0) for _ in range(slots - n)]}


def baseline_rdn(space: SRBlockSpace, target_params: float, *, convs: int = 4, out: int | None = None,
                 blocks: Iterable[int] = range(2, 21)) -> dict:
    """A plain RDN (identical RDB blocks, channels G0) with the parameter count closest to a target."""
    out = space.g0 if out is None else out
    best, gap = None, math.inf
    for n in blocks:
        if n > space.slots:
            break
        for g in GROWTHS:
            genome = uniform_chain("RDB", n, convs=convs, growth=g, out=out, slots=space.slots)
            d = abs(space.params(genome) - target_params)
            if d < gap:
                best, gap = genome, d
    return best  # type: ignore[return-value]
