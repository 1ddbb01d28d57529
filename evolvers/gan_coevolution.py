"""Co-evolutionary compression of both CycleGAN generators (Shu et al., ICCV 2019, arXiv:1907.10804).

Two DEAP populations of channel masks, one per generator, evolve in turn: population A with B's
current best held fixed, then B with A's new best. An individual's fitness (the paper's code,
defaults C = 500, gamma = 10, mu = 0.001) is

    C / (sum_x MSE(D(G_pruned(x)), D(G_full(x))) + gamma * sum_x L1(G_other(G_pruned(x)), x)) + mu * pruned

where `pruned` counts removed output channels over all layers. Without a discriminator the first term
becomes the output fidelity sum_x MSE(G_pruned(x), G_full(x)) (the fallback fitness). The best pair is
then fine-tuned with the CycleGAN losses (LSGAN, cycle weight 10, Adam 2e-4, betas 0.5/0.999) and
written out as physically pruned generators with a report and an image grid.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from searchlab.search_spaces import cyclegan as cg
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA
from searchlab import registry
from searchlab.errors import ConfigError
from searchlab.options import opt
from searchlab.protocols import Context, Genome, Result
from searchlab.trainer import resolve_device

# ------------------------------------------------------------------------------------------------
# genetic operators (DEAP), fed from an explicit generator
# ------------------------------------------------------------------------------------------------


def next_generation(masks: list[str], fitness: list[float], elite: str, size: int, rng: np.random.Generator,
                    repair: Callable[[np.ndarray, np.random.Generator], str],
                    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)) -> list[str]:
    """The paper's step: keep the elite, then fill by roulette selection / two-point crossover / segment
    flip (0.2 / 0.7 / 0.1)."""
    weights = [max(float(f), 1e-12) for f in fitness]  # roulette needs positive weights

    def select(k: int) -> list[str]:
        with deap_random(rng):
            return operators.sel_roulette(masks, weights, k)

    def bits(mask: str) -> list[int]:
        return [int(c) for c in mask]

    out = [elite]
    p_sel, p_cx, _ = probs
    while len(out) < size:
        u = rng.random()
        if u < p_sel:
            out += select(1)
        elif u < p_sel + p_cx:
            a, b = select(2)
            with deap_random(rng):
                children = operators.cx_two_point(bits(a), bits(b))
            out += ["".join(map(str, c)) for c in children][: size - len(out)]
        else:
            (parent,) = select(1)
            flipped = cg.mut_flip_segment(np.array(bits(parent), dtype=bool), rng)
            out.append("".join("1" if b else "0" for b in flipped))
    return [repair(np.frombuffer(m.encode(), dtype=np.uint8) == ord("1"), rng) for m in out]


# ------------------------------------------------------------------------------------------------
# the strategy
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoevolutionConfig:
    """Co-evolution strategy: two populations of channel masks evolved in turn"""

    population: int = opt(32, help="individuals per generator population")
    generations: int = opt(10, help="rounds after the initial populations (each round: A, then B)")
    p_select: float = opt(0.2, help="probability of copying a roulette-selected individual")
    p_crossover: float = opt(0.7, help="probability of two-point crossover of two selected individuals")
    p_mutation: float = opt(0.1, help="probability of flipping a random bit range of a selected individual")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError(f"--population must be at least 2, got {self.population}")
        if self.generations < 0:
            raise ConfigError(f"--generations must be >= 0, got {self.generations}")
        total = self.p_select + self.p_crossover + self.p_mutation
        if min(self.p_select, self.p_crossover, self.p_mutation) < 0 or abs(total - 1) > 1e-6:
            raise ConfigError(f"--p-select, --p-crossover and --p-mutation must be >= 0 and sum to 1, got {total:g}")


class CoevolutionStrategy(GenerationalGA):
    """Generation-wise ask/tell over the two sides: all of one side's population, then the other's.

    A genome is `{"side", "mask", "partner"}`; the partner is the other side's best mask at the time
    (None in the initial populations and when only one generator exists). Each side's population is
    one generation of the GA core, so round r, side s is generation r * len(sides) + s.
    """

    label = "coevolution"

    def __init__(self, space: cg.CycleganSpace, config: CoevolutionConfig, *, seed: int) -> None:
        self.sides = list(space.sides)
        super().__init__(space, seed, (config.generations + 1) * len(self.sides))
        self.config = config
        self.population: dict[str, list[str]] = {}
        self.fitness: dict[str, list[float]] = {}
        self.best: dict[str, str] = {}
        self.best_fitness: dict[str, float] = {}
        self.pending = self._population()

    @property
    def round(self) -> int:
        """0: the initial populations; 1..generations: evolution rounds."""
        return self.generation // len(self.sides)

    @property
    def side(self) -> str:
        return self.sides[self.generation % len(self.sides)]

    def _population(self) -> list[Genome]:
        side, size = self.side, self.config.population
        if self.round == 0:
            masks, partner = [self.space.random_mask(side, self.rng) for _ in range(size)], None
        else:
            probs = (self.config.p_select, self.config.p_crossover, self.config.p_mutation)
            masks = next_generation(self.population[side], self.fitness[side], self.best[side], size, self.rng,
                                    lambda bits, rng: self.space.repair(side, bits, rng), probs)
            other = self.space.other(side)
            partner = self.best.get(other) if other else None
        return [{"side": side, "mask": m, "partner": partner} for m in masks]

    def score(self, genome: Genome, result: Result) -> float:
        return float(result.objectives.get("fitness", 0.0)) if result.ok else 0.0

    def end_generation(self) -> None:
        side, masks = self.side, [g["mask"] for g in self.pending]
        best = int(np.argmax(self.scores))
        self.population[side], self.fitness[side] = masks, list(self.scores)
        self.best[side], self.best_fitness[side] = masks[best], self.scores[best]
        self.history.append({"round": self.round, "side": side, "best_fitness": self.scores[best],
                             "mean_fitness": float(np.mean(self.scores)), "best_kept_bits": masks[best].count("1")})

    def breed(self) -> list[Genome]:
        return self._population()

    def best_pair(self) -> dict[str, str]:
        return dict(self.best)

    def extra_state(self) -> dict:
        return {"population": self.population, "fitness": self.fitness, "best_masks": self.best,
                "best_fitness": self.best_fitness}

    def load_extra_state(self, state: dict) -> None:
        state = json.loads(json.dumps(state))
        self.population, self.fitness = state["population"], state["fitness"]
        self.best, self.best_fitness = state["best_masks"], state["best_fitness"]


# ------------------------------------------------------------------------------------------------
# fitness
# ------------------------------------------------------------------------------------------------

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
        fitness = self.config.c / max(loss, 1e-12) + self.config.mu * pruned
        params = cg.count_params(cg.pruned_shape(self.space.generators[side], g["mask"]))
        n = len(outs)
        psnr = 10 * np.log10(4.0 / max(mse_out / n, 1e-12))
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


# ------------------------------------------------------------------------------------------------
# fine-tuning with the CycleGAN losses
# ------------------------------------------------------------------------------------------------

def finetune(space: cg.CycleganSpace, small: dict[str, cg.ResnetGenerator], *, steps: int, lr: float = 2e-4,
             batch_size: int = 1, seed: int = 0, device: str | torch.device = "auto", cycle_weight: float = 10.0,
             progress: bool = False) -> dict:
    """Fine-tune pruned generators in place with the CycleGAN losses, on the shared trainer.

    A side with its discriminator trains adversarially (LSGAN) against a copy of the original D, which
    learns alongside; a side without one is pulled towards the full generator's output (L1), the
    fallback. With both generators the cycle loss (L1, weight 10) ties them. One Adam (2e-4, betas
    0.5/0.999) steps all parameters at once: the generator loss reaches D only through detached
    weights and the D loss sees detached fakes, so this equals the reference's G step then D step.
    """
    from torch.func import functional_call

    from searchlab.trainer import TrainConfig, fit

    dev = resolve_device(device)
    sides = list(small)
    modules = nn.ModuleDict({f"G_{s}": small[s] for s in sides})
    for s in sides:
        if s in space.discriminators:
            modules[f"D_{s}"] = copy.deepcopy(space.discriminators[s])
    full = {s: space.generators[s].to(dev).eval() for s in sides}
    pool = {s: x for s, x in space.train_pool.items() if len(x)}
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(int(seed))
        for _ in range(steps):
            yield {s: cg.to_unit(cg.random_crops(x, space.crop, batch_size, gen)).to(dev) for s, x in pool.items()}

    def loss_fn(m: nn.ModuleDict, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=dev)
        for s in sides:
            o = "B" if s == "A" else "A"
            fake = m[f"G_{s}"](batch[s])
            if f"D_{s}" in m:
                disc = m[f"D_{s}"]
                frozen = {k: v.detach() for k, v in disc.named_parameters()}
                pred = functional_call(disc, frozen, (fake,))
                total = total + mse(pred, torch.ones_like(pred))
                real, faked = disc(batch[o]), disc(fake.detach())
                total = total + 0.5 * (mse(real, torch.ones_like(real)) + mse(faked, torch.zeros_like(faked)))
            else:
                with torch.no_grad():
                    target = full[s](batch[s])
                total = total + l1(fake, target)
            if f"G_{o}" in m:
                total = total + cycle_weight * l1(m[f"G_{o}"](fake), batch[s])
        return total

    # channels-last: faster on CUDA, about 8 % slower on CPU for these instance-norm/reflection-pad nets
    cfg = TrainConfig.preset("gan", lr=lr, batch_size=batch_size, max_steps=steps, epochs=1.0,
                             channels_last=dev.type == "cuda")
    stats = fit(modules, batches, loss_fn, cfg, steps_per_epoch=max(steps, 1), seed=seed, device=dev,
                verbose=progress, desc="fine-tune")
    for s in sides:
        small[s].eval()
    return {"steps": stats.steps, "seconds": stats.seconds, "mean_loss": stats.final_loss}


# ------------------------------------------------------------------------------------------------
# finalize: prune the best pair, fine-tune, report, grid
# ------------------------------------------------------------------------------------------------

def fidelity(space: cg.CycleganSpace, side: str, gen: cg.ResnetGenerator, device: torch.device) -> dict:
    """PSNR / MSE of `gen` against the full generator on the test images (train images when none)."""
    imgs = space.images[f"test{side}"]
    if len(imgs) == 0:
        imgs = space.images[f"train{side}"]
    return cg.compare_outputs(space.generators[side], gen, imgs, device)


def save_grid(path: Path, rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
    """A PNG with one row per image: input | full generator | pruned generator."""
    from PIL import Image

    strips = [torch.cat([cg.to_uint8(t.cpu()) for t in row], dim=-1) for row in rows]
    grid = torch.cat(strips, dim=-2).permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(grid)).save(path)


def best_pair(space: cg.CycleganSpace, best_trial: dict, run_dir: Path | None) -> dict[str, str]:
    """The pair to keep: the co-evolution's final best masks (from the run's last strategy snapshot).

    Fitness values of different sides and rounds are not comparable (the cycle term joins after the
    first round), so the single best-scoring trial is only the fallback, with its partner (or the
    full mask) for the other generator.
    """
    if run_dir is not None and (Path(run_dir) / "run.sqlite").is_file():
        from searchlab.run_store import RunStore

        store = RunStore.open(run_dir)
        try:
            snap = store.last_snapshot()
        finally:
            store.close()
        masks = snap.state.get("best_masks") if snap and isinstance(snap.state, dict) else None
        if isinstance(masks, dict) and masks:
            pair = {s: space.validate({"side": s, "mask": m, "partner": None})["mask"] for s, m in masks.items()}
            for s in space.sides:
                pair.setdefault(s, cg.full_mask(space.generators[s]))
            return pair
    g = space.validate(best_trial["genome"])
    pair = {g["side"]: g["mask"]}
    other = space.other(g["side"])
    if other is not None:
        pair[other] = g["partner"] if g["partner"] is not None else cg.full_mask(space.generators[other])
    return pair


def finalize(space: cg.CycleganSpace, evaluator: Any, best_trial: dict, ctx: Context, *,
             config: cg.CycleganConfig | None = None) -> dict:
    """Prune the best pair physically, fine-tune it, and write generators, report and grid to the run."""
    cfg = config or space.config
    steps = cfg.finetune_steps if cfg else 0
    dev = resolve_device(ctx.device)
    out_dir = Path(ctx.run_dir or ".") / "cyclegan"
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = best_pair(space, best_trial, ctx.run_dir)
    small = {s: cg.prune(space.generators[s].to(dev), m) for s, m in pair.items()}
    report: dict = {"trial": best_trial.get("id"), "masks": pair, "sides": {}}
    for s in pair:
        full_desc = space.full_description(s)
        desc = cg.describe_generator(small[s], space.flops_size)
        report["sides"][s] = {"full": full_desc, "pruned": desc,
                              "param_ratio": full_desc["params"] / desc["params"],
                              "flops_ratio": full_desc["flops"] / desc["flops"],
                              "fidelity_before": fidelity(space, s, small[s], dev)}
    if steps:
        from searchlab.trainer import TrainingFailed

        saved = {s: copy.deepcopy(g.state_dict()) for s, g in small.items()}
        try:
            report["finetune"] = finetune(space, small, steps=steps, lr=cfg.finetune_lr, batch_size=cfg.batch_size,
                                          seed=ctx.seed, device=dev, progress=True)
        except TrainingFailed as exc:  # keep the searched weights; say why in the report
            report["finetune"] = {"failed": str(exc)}
            for s, g in small.items():
                g.load_state_dict(saved[s])
        for s in pair:
            report["sides"][s]["fidelity_after"] = fidelity(space, s, small[s], dev)
    rows = []
    for s in pair:
        torch.save({k: v.detach().cpu() for k, v in small[s].state_dict().items()}, out_dir / f"pruned_G_{s}.pth")
        imgs = space.images[f"test{s}"] if len(space.images[f"test{s}"]) else space.images[f"train{s}"]
        x = cg.to_unit(imgs[:4]).to(dev)
        with torch.no_grad():
            for i in range(len(x)):
                xi = x[i:i + 1]
                rows.append((xi[0], space.generators[s].to(dev)(xi)[0], small[s](xi)[0]))
    (out_dir / "masks.json").write_text(json.dumps(pair, indent=1))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=float))
    save_grid(out_dir / "grid.png", rows)
    summary = {"dir": str(out_dir)}
    for s, r in report["sides"].items():
        after = r.get("fidelity_after", r["fidelity_before"])
        summary[f"G_{s}"] = (f"{r['full']['params']:,} -> {r['pruned']['params']:,} params "
                             f"({r['param_ratio']:.2f}x), {r['pruned']['size_mb']:.2f} MB, "
                             f"{r['flops_ratio']:.2f}x fewer FLOPs; PSNR vs full "
                             f"{r['fidelity_before']['psnr']:.2f} dB -> {after['psnr']:.2f} dB")
    return summary


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------

def _evaluator_factory(space: cg.CycleganSpace, config: GanFitnessConfig, ctx: Context) -> GanFitness:
    cfg = space.config
    return GanFitness(space, config, val_images=cfg.val_images if cfg else 8, train_cfg=cfg)


registry.register_space(
    "cyclegan", factory=lambda config, ctx: cg.CycleganSpace.from_config(config), config=cg.CycleganConfig, default_strategy="coevolution",
    default_evaluator="gan-fitness", finalize=finalize,
    help="channel masks of both CycleGAN generators (co-evolutionary compression)")
registry.register_strategy(
    "coevolution", factory=lambda space, config, *, seed, objectives: CoevolutionStrategy(space, config, seed=seed),
    config=CoevolutionConfig, spaces=("cyclegan",),
    help="two mask populations (G_A, G_B) evolved in turn with DEAP selection/crossover/mutation")
registry.register_evaluator(
    "gan-fitness", factory=_evaluator_factory, config=GanFitnessConfig, spaces=("cyclegan",),
    help="C / (discriminator-aware fidelity + gamma * cycle L1) + mu * pruned channels")
