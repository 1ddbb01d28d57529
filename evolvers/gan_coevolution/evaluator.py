"""The `gan-fitness` evaluator: C / (discriminator-aware fidelity + gamma * cycle L1) + mu * pruned channels,
or output fidelity against the full generator where no discriminator is given."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from searchlab.errors import ConfigError
from searchlab.evolvers.gan_coevolution.finetune import finetune
from searchlab.options import opt
from searchlab.training.image_metrics import psnr_from_mse
from searchlab.io import resolve_device
from searchlab.protocols import Context, Genome, Result
from searchlab.search_spaces import cyclegan as cg


@dataclass(frozen=True)
class GanFitnessConfig:
    """GAN co-evolution fitness: discriminator-aware fidelity, cycle consistency and size"""

    fitness: str = opt("auto", help="discriminator: MSE of D outputs (the paper); fidelity: MSE of generator "
                       "outputs (when no discriminator); auto: discriminator when D_A/D_B were loaded",
                       choices=("auto", "discriminator", "fidelity"))
    c: float = opt(500.0, help="numerator C of the fitness C / (loss) + mu * pruned")
    gamma: float = opt(10.0, help="weight of the L1 cycle error in the loss")
    mu: float = opt(0.001, help="reward per pruned output channel (counted over all layers)")
    candidate_steps: int = opt(0, help="joint CycleGAN fine-tuning steps of each candidate before scoring (0: none)")
    apply: str = opt("auto", help="score candidates as physically pruned generators (rebuild), by masking the full "
                     "one (mask), or auto: rebuild on CPU, mask on a GPU (the faster of the two on each; "
                     "docs/benchmarks.md)", choices=("auto", "rebuild", "mask"))

    def __post_init__(self) -> None:
        if self.c <= 0 or self.gamma < 0 or self.mu < 0:
            raise ConfigError("--c must be > 0, --gamma and --mu >= 0")
        if self.candidate_steps < 0:
            raise ConfigError(f"--candidate-steps must be >= 0, got {self.candidate_steps}")


class GanFitness:
    """Scores one side's mask against the full generator on a fixed validation set (cached full outputs)."""

    objectives = {"fitness": "max", "params": "min", "resemble": "min", "cycle": "min", "psnr": "max"}

    def __init__(self, space: cg.CycleganSpace, config: GanFitnessConfig, *, val_images: int = 8,
                 train_cfg: cg.CycleganConfig | None = None) -> None:
        self.space, self.config, self.train_cfg = space, config, train_cfg
        mode = config.fitness
        if mode == "auto":
            mode = "discriminator" if all(s in space.discriminators for s in space.sides) else "fidelity"
        if mode == "discriminator":
            missing = [s for s in space.sides if s not in space.discriminators]
            if missing:
                raise ConfigError(f"--fitness discriminator needs D_{missing[0]} (latest_net_D_{missing[0]}.pth) in "
                                  f"the checkpoint folder; use --fitness fidelity without discriminators")
        self.mode = mode
        self.val = {s: space.images[f"train{s}"][:val_images] for s in space.sides}
        self._cache: dict[tuple[str, str], dict] = {}

    def _reference(self, side: str, device: torch.device) -> dict:
        """Full generator outputs (and their D scores) on the validation images, computed once per device."""
        key = (side, str(device))
        if key not in self._cache:
            gen = self.space.generators[side].to(device)
            x = cg.to_unit(self.val[side]).to(device)
            with torch.no_grad():
                y = torch.cat([gen(x[i:i + 1]) for i in range(len(x))])
                d = None
                if self.mode == "discriminator":
                    disc = self.space.discriminators[side].to(device)
                    d = torch.cat([disc(y[i:i + 1]) for i in range(len(y))])
            self._cache[key] = {"x": x, "y": y, "d": d}
        return self._cache[key]

    def _apply(self, side: str, bits: str, device: torch.device):
        gen = self.space.generators[side].to(device)
        apply = self.config.apply
        if apply == "auto":  # a rebuilt generator's new shapes cost more on a GPU than the masked full one
            apply = "mask" if device.type == "cuda" else "rebuild"
        if apply == "mask":
            return gen, cg.masked(gen, bits)
        return cg.prune(gen, bits), contextlib.nullcontext()

    def evaluate(self, genome: Genome, *, seed: int, device: str) -> Result:
        start = time.perf_counter()
        g = self.space.validate(genome)
        side, other = g["side"], self.space.other(g["side"])
        dev = resolve_device(device)
        ref = self._reference(side, dev)
        gen, ctx_main = self._apply(side, g["mask"], dev)
        partner_gen, ctx_partner = (None, contextlib.nullcontext())
        if g["partner"] is not None and other is not None:
            partner_gen, ctx_partner = self._apply(other, g["partner"], dev)
        steps = self.config.candidate_steps
        if steps:
            gen, partner_gen = self._finetune_candidate(g, gen, partner_gen, steps, seed, dev)
            ctx_main, ctx_partner = contextlib.nullcontext(), contextlib.nullcontext()
        resemble = cycle = mse_out = 0.0
        with torch.no_grad(), ctx_main:
            outs = [gen(ref["x"][i:i + 1]) for i in range(len(ref["x"]))]
        with torch.no_grad():
            for i, y in enumerate(outs):
                err = float(torch.mean((y - ref["y"][i:i + 1]) ** 2))
                mse_out += err
                if self.mode == "discriminator":
                    d = self.space.discriminators[side].to(dev)(y)
                    resemble += float(torch.mean((d - ref["d"][i:i + 1]) ** 2))
                else:
                    resemble += err
            if partner_gen is not None:
                with ctx_partner:
                    for i, y in enumerate(outs):
                        cycle += float(torch.mean(torch.abs(partner_gen(y) - ref["x"][i:i + 1])))
        loss = resemble + self.config.gamma * cycle
        pruned = cg.channels_pruned(g["mask"], self.space.generators[side])
        mu = 0.0 if self.space.budgets else self.config.mu  # under a size budget the size reward is moot
        fitness = self.config.c / max(loss, 1e-12) + mu * pruned
        params = cg.count_params(cg.pruned_shape(self.space.generators[side], g["mask"]))
        n = len(outs)
        psnr = psnr_from_mse(mse_out / n, data_range=2.0)  # outputs in [-1, 1]
        return Result("ok", {"fitness": fitness, "params": params, "resemble": resemble, "cycle": cycle,
                             "psnr": float(psnr)},
                      {"seconds": time.perf_counter() - start, "images": float(n * (2 if partner_gen else 1))})

    def _finetune_candidate(self, g: dict, gen, partner_gen, steps: int, seed: int, dev: torch.device):
        """Short joint CycleGAN fine-tuning of a candidate (and its partner) on copies, before scoring."""
        side, other = g["side"], self.space.other(g["side"])
        small = {side: cg.prune(self.space.generators[side].to(dev), g["mask"])}
        if partner_gen is not None and other is not None:
            small[other] = cg.prune(self.space.generators[other].to(dev), g["partner"])
        lr = self.train_cfg.finetune_lr if self.train_cfg else 2e-4
        batch = self.train_cfg.batch_size if self.train_cfg else 1
        finetune(self.space, small, steps=steps, lr=lr, batch_size=batch, seed=seed, device=dev)
        return small[side], small.get(other) if other else None


def make_evaluator(space: cg.CycleganSpace, config: GanFitnessConfig, ctx: Context) -> GanFitness:
    cfg = space.config
    return GanFitness(space, config, val_images=cfg.val_images if cfg else 8, train_cfg=cfg)
