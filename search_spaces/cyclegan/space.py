"""The `cyclegan` space: genomes are one generator's mask (with its partner's), checked and described
against the loaded generators; its configuration reads the checkpoints and images."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt
from searchlab.size_target import SizeBudget, SizeTarget, flag, human, parse_target, target_opt
from searchlab.search_spaces.cyclegan.checkpoints import find_checkpoints, load_discriminator, load_generator
from searchlab.search_spaces.cyclegan.images import center_crop, read_unpaired
from searchlab.search_spaces.cyclegan.masks import (channels_pruned, genome_length, mask_params, mut_flip_segment,
                                                    pruned_shape, repair, split_mask)
from searchlab.search_spaces.cyclegan.networks import (PatchDiscriminator, ResnetGenerator, SIDES, count_flops,
                                                       count_params, describe_generator, size_mb)


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
    max_params: str = target_opt("parameters", "each original generator's",
                                 aliases={"min_compression": lambda n: "" if float(n) <= 1 else f"{1 / float(n):.6g}"})
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
        parse_target(self.max_params, "params")  # a malformed --max-params is refused before anything is read
        if self.finetune_steps < 0 or self.batch_size < 1 or self.finetune_lr <= 0:
            raise ConfigError("--finetune-steps must be >= 0, --batch-size >= 1 and --finetune-lr > 0")


def generator_budget(side: str, gen: ResnetGenerator, target: SizeTarget) -> SizeBudget:
    """A generator's parameter budget; refused when even one channel per layer is over it."""
    full = float(count_params(gen))
    budget = SizeBudget("params", target.limit(full), full)
    smallest = float(mask_params(_one_per_layer(gen), gen))
    if not budget.feasible(smallest):
        raise ConfigError(f"{flag('params')} {target.text} cannot be met: G_{side} keeps {human(smallest)} "
                          f"parameters with one channel per layer ({smallest / full:.3g} of its {human(full)}); "
                          f"raise {flag('params')} to at least {np.ceil(1000 * smallest / full) / 1000:g}")
    return budget


def _one_per_layer(gen: ResnetGenerator) -> np.ndarray:
    bits = np.zeros(genome_length(gen), dtype=bool)
    bits[np.concatenate([[0], np.cumsum(gen.widths)[:-1]])] = True
    return bits


class CycleganSpace:
    """Genomes `{"side": "A"|"B", "mask": bits, "partner": bits|None}`.

    `mask` prunes the generator of `side`; `partner` is the other side's mask held fixed while this one
    is scored (None when only one generator exists or in the first generation). Including the partner
    makes a genome's score a pure function of the genome, as the run store's de-duplication needs.
    """

    name = "cyclegan"

    def __init__(self, generators: dict[str, ResnetGenerator], discriminators: dict[str, PatchDiscriminator],
                 images: dict[str, torch.Tensor], *, init_keep: float = 0.5, target: SizeTarget | None = None,
                 flops_size: int = 256, config: CycleganConfig | None = None,
                 train_pool: dict[str, torch.Tensor] | None = None, crop: int = 0) -> None:
        self.generators, self.discriminators, self.images = generators, discriminators, images
        self.config, self.crop = config, crop
        # fine-tuning draws random crops from the uncropped training images
        self.train_pool = train_pool or {s: images[f"train{s}"] for s in SIDES if f"train{s}" in images}
        self.sides = tuple(s for s in SIDES if s in generators)
        self.init_keep, self.flops_size = init_keep, flops_size
        self._full = {s: describe_generator(g, flops_size) for s, g in generators.items()}
        self.budgets = {s: generator_budget(s, generators[s], target) for s in self.sides} if target else {}

    @classmethod
    def from_config(cls, config: CycleganConfig) -> "CycleganSpace":
        paths = find_checkpoints(config.checkpoints)
        gens = {s: load_generator(paths["G_" + s]) for s in SIDES if "G_" + s in paths}
        target = parse_target(config.max_params, "params")
        for side, gen in gens.items():  # an unreachable target is refused before the images are read
            if target:
                generator_budget(side, gen, target)
        discs = {s: load_discriminator(paths["D_" + s]) for s in SIDES if "D_" + s in paths and s in gens}
        raw = read_unpaired(config.data)
        images = {name: center_crop(x, config.crop, str(Path(config.data) / name)) for name, x in raw.items()}
        return cls(gens, discs, images, init_keep=config.init_keep, target=target,
                   config=config, train_pool={s: raw[f"train{s}"] for s in SIDES}, crop=config.crop)

    # the units of the GA core's budget rule: one channel of one generator
    def size(self, side: str, mask: str) -> float:
        return float(mask_params(np.frombuffer(mask.encode(), dtype=np.uint8) == ord("1"), self.generators[side]))

    def drop_channel(self, side: str, mask: str, rng: np.random.Generator) -> str | None:
        """The mask with one random kept channel less (every layer keeps one); None when none can go."""
        gen = self.generators[side]
        bits = np.frombuffer(mask.encode(), dtype=np.uint8) == ord("1")
        seg_of = np.repeat(np.arange(len(gen.widths)), gen.widths)
        counts = np.bincount(seg_of[bits], minlength=len(gen.widths))
        droppable = np.flatnonzero(bits & (counts[seg_of] > 1))
        if len(droppable) == 0:
            return None
        i = int(rng.choice(droppable))
        return mask[:i] + "0" + mask[i + 1:]

    def add_channel(self, side: str, mask: str, rng: np.random.Generator) -> str | None:
        """The mask with one random pruned channel back; None when nothing is pruned."""
        off = [i for i, c in enumerate(mask) if c == "0"]
        if not off:
            return None
        i = int(off[int(rng.integers(len(off)))])
        return mask[:i] + "1" + mask[i + 1:]

    def other(self, side: str) -> str | None:
        o = "B" if side == "A" else "A"
        return o if o in self.generators else None

    def random_mask(self, side: str, rng: np.random.Generator) -> str:
        gen = self.generators[side]
        bits = rng.random(genome_length(gen)) < self.init_keep
        return self.repair(side, bits, rng)

    def repair(self, side: str, bits: np.ndarray, rng: np.random.Generator) -> str:
        """A valid mask (every layer keeps a channel); the size budget is the GA's to meet."""
        return repair(bits, self.generators[side], rng)

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
