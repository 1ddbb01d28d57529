"""ESRN block search (Song et al., AAAI 2020): a genetic algorithm with block credits, proxy-trained
super-resolution candidates, and the final evaluation on standard benchmark sets.

Strategy `esrn` (per generation, DEAP operators): keep the `elites` best; fill the rest with children
of two parents drawn by roulette on fitness (`tools.selRoulette`), segment (two-point) crossover of
their slot lists (`tools.cxTwoPoint`), and a mutation of used bits, block types and block
hyper-parameters; every child is repaired into the parameter range by repeated mutation.

Block credits (what turns random mutation into guided mutation). After generation t, with fitness f_i
(validation PSNR) of the generation's successful individuals, z_i = (f_i - mean f) / (std f + 1e-8):

    type credit      c_k = sum_i z_i n_ik / sum_i n_ik      (n_ik = used blocks of type k in individual i)
    position credit  c_p = mean(z_i : slot p used) - mean(z_i : slot p unused)
    running credit   C <- (1 - a) C + a c                  (a = --credit-rate, for the credits observed)

and mutations then draw a changed slot's type with P(k) = softmax(beta C_k) and flip slot p's used
bit on with probability 2 sigmoid(beta C_p) x rate, off with 2 sigmoid(-beta C_p) x rate
(beta = --credit-strength). `--no-credits` (beta = 0) is the plain GA with uniform mutation.

Evaluator `sr-proxy`: train the candidate for a few epochs of random LR/HR crops (flips, rotations)
with L1 loss and Adam on the shared trainer, then PSNR on the Y channel of held-out training images.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from searchlab.search_spaces.sr_blocks import BLOCK_TYPES, SCALES, SRBlockSpace, SRNet, mut_blocks, used_blocks
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA
from searchlab import registry
from searchlab.errors import ConfigError, DataError
from searchlab.image_metrics import modcrop, psnr, ssim
from searchlab.imresize import downscale, imresize
from searchlab.options import opt
from searchlab.protocols import Context, Genome, Result

# --------------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SRSpaceConfig:
    """Super-resolution block space"""

    scale: int = opt(2, help="upscaling factor", choices=SCALES)
    g0: int = opt(32, help="feature channels of the backbone (G0)")
    slots: int = opt(20, help="block slots in the chain")
    min_blocks: int = opt(4, help="fewest used blocks a network may have")
    params: str = opt("300k:330k", help="parameter range LOW:HIGH, e.g. 300k:330k (enforced by repeated mutation)")
    max_mult_adds: str = opt("0", help="cap on mult-adds for a 1280x720 output, e.g. 80G (0 = none)")
    skip: str = opt("bicubic", help="global skip: add the bicubic-upscaled input (bicubic) or not (none)",
                    choices=("bicubic", "none"))

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError(f"--scale must be 2, 3 or 4, got {self.scale}")
        if self.slots < 1 or self.slots > 64:
            raise ConfigError(f"--slots must be between 1 and 64, got {self.slots}")


@dataclass(frozen=True)
class ESRNConfig:
    """ESRN genetic algorithm"""

    population: int = opt(8, help="individuals per generation")
    generations: int = opt(20, help="generations (the first is random)")
    elites: int = opt(2, help="best individuals copied unchanged into the next generation")
    crossover: float = opt(0.5, help="probability that two parents swap a segment of slots")
    mutation_rate: float = opt(0.1, help="probability that each gene of each slot mutates")
    credits: bool = opt(True, help="guide mutation by block credits (--no-credits: uniform mutation)")
    credit_strength: float = opt(2.0, help="beta: how strongly credits bias mutation")
    credit_rate: float = opt(0.5, help="a: weight of the newest generation in the running credits")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise ConfigError(f"--generations must be at least 1, got {self.generations}")
        if not 0 <= self.elites < self.population:
            raise ConfigError(f"--elites must be between 0 and population-1 ({self.population - 1}), got {self.elites}; "
                              f"for --population {self.population} pass --elites {max(0, self.population - 1)} or less")
        if not 0 <= self.crossover <= 1 or not 0 < self.mutation_rate <= 1:
            raise ConfigError("--crossover must be in [0, 1] and --mutation-rate in (0, 1]")
        if self.credit_strength < 0 or not 0 < self.credit_rate <= 1:
            raise ConfigError("--credit-strength must be >= 0 and --credit-rate in (0, 1]")


@dataclass(frozen=True)
class SRProxyConfig:
    """Proxy training and evaluation of SR candidates"""

    train: str = opt("", help="folder of HR training images (e.g. BSD68); the last --val-images are held out")
    eval_sets: list[str] = opt([], flag="--eval", help="benchmark sets for the final report, NAME:FOLDER, e.g. set5:data/Set5")
    epochs_per_candidate: float = opt(2.0, help="proxy training epochs per candidate")
    crops_per_image: int = opt(4, help="random crops per training image per epoch")
    patch: int = opt(24, help="LR training patch side (the HR patch is patch x scale)")
    batch_size: int = opt(16, help="training batch size")
    lr: float = opt(1e-3, help="Adam learning rate (cosine decay)")
    val_images: int = opt(4, help="training images held out to score candidates")
    val_crop: int = opt(96, help="HR centre crop of each validation image (0 = whole image)")
    final_epochs: float = opt(20.0, help="training epochs of the best network in the final step")

    def __post_init__(self) -> None:
        if self.epochs_per_candidate <= 0 or self.final_epochs <= 0:
            raise ConfigError("--epochs-per-candidate and --final-epochs must be > 0")
        if self.patch < 4 or self.batch_size < 1 or self.crops_per_image < 1:
            raise ConfigError("--patch must be >= 4, --batch-size and --crops-per-image >= 1")
        if self.val_images < 1:
            raise ConfigError(f"--val-images must be at least 1, got {self.val_images}")
        if self.val_crop < 0:
            raise ConfigError(f"--val-crop must be >= 0, got {self.val_crop}")
        for spec in self.eval_sets:
            if ":" not in spec:
                raise ConfigError(f"malformed --eval {spec!r}; write NAME:FOLDER, e.g. set5:data/Set5")


# --------------------------------------------------------------------------------------------------
# data: HR folders -> (LR, HR) pairs made with MATLAB-compatible bicubic
# --------------------------------------------------------------------------------------------------

def _names(folder: Path) -> list[str]:
    from searchlab.data import IMAGE_SUFFIXES

    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def load_pairs(folder: str, scale: int) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    """(names, LR images, HR images cropped to a multiple of scale) of an HR folder, uint8 [3,H,W]."""
    from searchlab.data import load_hr_folder

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


def _centre_crop(hr: torch.Tensor, size: int, scale: int) -> torch.Tensor:
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
    from searchlab.trainer import to_float

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


# --------------------------------------------------------------------------------------------------
# evaluator: proxy training on the shared trainer
# --------------------------------------------------------------------------------------------------

class SRProxyEvaluator:
    """Train a candidate briefly (L1, Adam) on random crops; fitness = validation PSNR (Y, shaved)."""

    objectives = {"psnr": "max", "params": "min", "mult_adds": "min"}

    def __init__(self, space: SRBlockSpace, config: SRProxyConfig, ctx: Context | None = None) -> None:
        if not config.train:
            raise ConfigError("--train is required: a folder of HR training images, e.g. --train data/BSD68")
        self.space, self.config = space, config
        self.verbose = bool(ctx.verbose) if ctx else False
        scale = space.scale
        names, lrs, hrs = load_pairs(config.train, scale)
        if len(hrs) <= config.val_images:
            raise DataError(f"{config.train} has {len(hrs)} images; need more than --val-images "
                            f"({config.val_images}) so some remain for training")
        hr_patch = config.patch * scale
        for name, hr in zip(names[: len(hrs) - config.val_images], hrs):
            if min(hr.shape[-2:]) < hr_patch:
                raise DataError(f"{Path(config.train) / name} ({hr.shape[-1]}x{hr.shape[-2]}) is smaller than the "
                                f"{hr_patch}px HR training crop; use a smaller --patch or remove the image")
        n_train = len(hrs) - config.val_images
        self.train_lr, self.train_hr = lrs[:n_train], hrs[:n_train]
        self.val_hr = [_centre_crop(hr, config.val_crop, scale) for hr in hrs[n_train:]]
        self.val_lr = [downscale(hr, scale) for hr in self.val_hr]
        self.steps_per_epoch = max(1, math.ceil(n_train * config.crops_per_image / config.batch_size))

    def train_config(self, epochs: float):
        from searchlab.trainer import TrainConfig

        return TrainConfig.preset("sr", epochs=epochs, batch_size=self.config.batch_size, lr=self.config.lr,
                                  schedule="cosine")

    def train(self, genome: Genome, *, seed: int, device: str, epochs: float, desc: str = "train"):
        """Build the network with weights seeded by `seed` and train it; returns (net, TrainStats)."""
        from searchlab.trainer import fit, paired_patches, resolve_device, to_float

        dev = resolve_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.space.build(genome)
        gen = torch.Generator().manual_seed(int(seed))
        cfg = self.config

        def batches():
            for _ in range(self.steps_per_epoch):
                lo, hi = paired_patches(self.train_lr, self.train_hr, scale=self.space.scale, patch=cfg.patch,
                                        batch_size=cfg.batch_size, gen=gen, device=dev)
                yield to_float(lo), to_float(hi)

        def loss_fn(model, batch):
            lo, hi = batch
            return F.l1_loss(model(lo), hi)

        stats = fit(net, batches, loss_fn, self.train_config(epochs), steps_per_epoch=self.steps_per_epoch,
                    seed=seed, device=dev, verbose=self.verbose, desc=desc)
        return net, stats

    def evaluate(self, genome: Genome, *, seed: int, device: str = "auto") -> Result:
        from searchlab.trainer import TrainingFailed, resolve_device, run_guarded

        genome = self.space.validate(genome)
        info = self.space.describe(genome)
        start = time.perf_counter()

        def work() -> Result:
            net, stats = self.train(genome, seed=seed, device=device, epochs=self.config.epochs_per_candidate)
            scores = score_images(net, self.val_lr, self.val_hr, self.space.scale, resolve_device(device))
            if not math.isfinite(scores["psnr"]):
                raise TrainingFailed("validation PSNR is not finite")
            return Result("ok", {"psnr": scores["psnr"], "ssim": scores["ssim"], "params": float(info["params"]),
                                 "mult_adds": float(info["mult_adds"])},
                          {"seconds": time.perf_counter() - start, "epochs": stats.epochs})

        return run_guarded(work, cost={"seconds": time.perf_counter() - start})


# --------------------------------------------------------------------------------------------------
# strategy: DEAP genetic algorithm with block credits
# --------------------------------------------------------------------------------------------------

def psnr_weights(fitness: list[float]) -> list[float]:
    """Roulette weights from PSNRs, which differ by fractions of a dB: fitness above the generation's worst
    plus a tenth of the spread (the worst keeps a small chance)."""
    lo, hi = min(fitness), max(fitness)
    floor = 0.1 * (hi - lo) + 1e-6
    return [f - lo + floor for f in fitness]


def cx_segment(a: dict, b: dict, rng: np.random.Generator) -> tuple[dict, dict]:
    """Segment crossover of two block chains: swap the slots between two cut points."""
    x, y = [dict(s) for s in a["blocks"]], [dict(s) for s in b["blocks"]]
    if len(x) < 2:
        return {"blocks": x}, {"blocks": y}
    with deap_random(rng):
        x, y = operators.cx_two_point(x, y)
    return {"blocks": x}, {"blocks": y}


def block_credits(population: list[dict], fitness: list[float], slots: int) -> tuple[dict[str, float], list[float | None]]:
    """This generation's credit of each block type and of each slot being used (see module docstring)."""
    f = np.asarray(fitness, dtype=np.float64)
    z = (f - f.mean()) / (f.std() + 1e-8)
    types: dict[str, float] = {}
    for kind in BLOCK_TYPES:
        counts = np.array([sum(1 for b in used_blocks(g) if b["type"] == kind) for g in population], dtype=np.float64)
        if counts.sum() > 0:
            types[kind] = float((z * counts).sum() / counts.sum())
    positions: list[float | None] = []
    for p in range(slots):
        used = np.array([g["blocks"][p]["used"] for g in population], dtype=bool)
        positions.append(float(z[used].mean() - z[~used].mean()) if used.any() and (~used).any() else None)
    return types, positions


class ESRNStrategy(GenerationalGA):
    """Generational GA over SR block chains with block credits; elites are carried, not asked again."""

    label = "esrn"

    def __init__(self, space: SRBlockSpace, config: ESRNConfig, seed: int, objectives: dict[str, str] | None = None):
        super().__init__(space, seed, config.generations)
        self.config = config
        self.elites: list[dict] = []    # {"genome", "fitness"} carried into the current generation
        self.type_credit = {k: 0.0 for k in BLOCK_TYPES}
        self.use_credit = [0.0] * space.slots
        self.toolbox = self._toolbox()
        self.pending = [space.sample(self.rng) for _ in range(config.population)]

    def _toolbox(self):
        from deap import base

        toolbox = base.Toolbox()
        toolbox.register("select", operators.sel_roulette)
        toolbox.register("mate", cx_segment)
        toolbox.register("mutate", self._mutate)
        return toolbox

    # mutation probabilities -------------------------------------------------------------------------
    def type_probs(self) -> np.ndarray | None:
        if not self.config.credits:
            return None
        c = self.config.credit_strength * np.array([self.type_credit[k] for k in BLOCK_TYPES])
        e = np.exp(c - c.max())
        return e / e.sum()

    def use_probs(self) -> np.ndarray | None:
        if not self.config.credits:
            return None
        return 1.0 / (1.0 + np.exp(-self.config.credit_strength * np.asarray(self.use_credit)))

    def _mutate(self, genome: dict, rng: np.random.Generator) -> dict:
        return mut_blocks(genome, rng, rate=self.config.mutation_rate, type_probs=self.type_probs(),
                          use_probs=self.use_probs())

    # the GA hooks -----------------------------------------------------------------------------------
    def score(self, genome: Genome, result: Result) -> float | None:
        return float(result.objectives["psnr"]) if result.ok and "psnr" in result.objectives else None

    def _scored(self) -> list[dict]:
        """The generation's members with a PSNR: the carried elites, then the told children."""
        told = [{"genome": g, "fitness": f} for g, f in zip(self.pending, self.scores)]
        return [m for m in self.elites + told if m["fitness"] is not None]

    def end_generation(self) -> None:
        ok = self._scored()
        best = max(ok, key=lambda m: m["fitness"]) if ok else None
        self.history.append({"generation": self.generation, "best_psnr": best["fitness"] if best else None,
                             "mean_psnr": float(np.mean([m["fitness"] for m in ok])) if ok else None,
                             "type_credit": dict(self.type_credit)})
        if len(ok) >= 2:
            self._update_credits([m["genome"] for m in ok], [m["fitness"] for m in ok])
            self.history[-1]["type_credit"] = dict(self.type_credit)

    def breed(self) -> list[Genome]:
        cfg, tb, rng = self.config, self.toolbox, self.rng
        ok = self._scored()
        self.elites = sorted(ok, key=lambda m: -m["fitness"])[:cfg.elites]
        children: list[dict] = []
        n_children = cfg.population - len(self.elites)
        while len(children) < n_children:
            if len(ok) >= 2:
                with deap_random(rng):
                    a, b = tb.select([m["genome"] for m in ok], psnr_weights([m["fitness"] for m in ok]), 2)
            else:  # nothing (or one) succeeded: restart from fresh samples
                a, b = self.space.sample(rng), self.space.sample(rng)
            if rng.random() < cfg.crossover:
                a, b = tb.mate(a, b, rng)
            for child in (a, b):
                if len(children) < n_children:
                    child = tb.mutate(child, rng)
                    children.append(self.space.repair(child, rng, self._mutate))
        return children

    def _update_credits(self, genomes: list[dict], fitness: list[float]) -> None:
        a = self.config.credit_rate
        types, positions = block_credits(genomes, fitness, self.space.slots)
        for k, c in types.items():
            self.type_credit[k] = (1 - a) * self.type_credit[k] + a * c
        for p, c in enumerate(positions):
            if c is not None:
                self.use_credit[p] = (1 - a) * self.use_credit[p] + a * c

    def extra_state(self) -> dict:
        return {"elites": self.elites, "type_credit": self.type_credit, "use_credit": self.use_credit}

    def load_extra_state(self, state: dict) -> None:
        state = json.loads(json.dumps(state))
        self.elites = state["elites"]
        self.type_credit = {k: float(state["type_credit"].get(k, 0.0)) for k in BLOCK_TYPES}
        self.use_credit = [float(c) for c in state["use_credit"]]


# --------------------------------------------------------------------------------------------------
# export, side-by-side picture, finalize
# --------------------------------------------------------------------------------------------------

def export_model(net: SRNet, genome: dict, space: SRBlockSpace, folder: Path) -> Path:
    """Weights as safetensors plus the genome and backbone options as JSON (no pickle)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    meta = {"genome": genome, "scale": space.scale, "g0": space.g0, "groups": space.groups, "skip": space.skip,
            "slots": space.slots, "params": space.params(genome)}
    tmp = folder / "model.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(folder / "model.json")
    return folder


def load_model(folder: str | Path) -> SRNet:
    """Rebuild an exported network (see `export_model`)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
        weights = load_file(str(folder / "model.safetensors"))
    except Exception as exc:  # noqa: BLE001 - missing, truncated or foreign files all mean the same to the user
        raise DataError(f"{folder} is not an exported SR model ({type(exc).__name__}); it needs model.json and "
                        f"model.safetensors") from None
    try:
        net = SRNet(meta["genome"], g0=meta["g0"], scale=meta["scale"], groups=meta["groups"], skip=meta["skip"])
        net.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{folder}: model.json and model.safetensors do not match ({type(exc).__name__}); "
                        f"export the model again") from None
    return net.eval()


def side_by_side(path: Path, bicubic: torch.Tensor, searched: torch.Tensor, hr: torch.Tensor, *, crop: int = 120,
                 titles: tuple[str, str, str] = ("bicubic", "searched", "HR")) -> Path:
    """A PNG with the same crop of bicubic | searched | HR (the crop with the largest bicubic error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = hr.shape[-2:]
    c = min(crop, h, w)
    err = ((bicubic.float() - hr.float()) ** 2).mean(0)
    pooled = F.avg_pool2d(err[None, None], c, stride=max(1, c // 4))[0, 0]
    idx = int(pooled.argmax())
    top, left = (idx // pooled.shape[1]) * max(1, c // 4), (idx % pooled.shape[1]) * max(1, c // 4)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, img, title in zip(axes, (bicubic, searched, hr), titles):
        ax.imshow(img[:, top:top + c, left:left + c].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def finalize(space: SRBlockSpace, evaluator: SRProxyEvaluator, best_trial: dict, ctx: Context) -> dict:
    """Train the best genome for --final-epochs, score it and bicubic on every --eval set, save the
    side-by-side picture and the exported model in the run folder."""
    from searchlab.trainer import resolve_device

    genome = space.validate(best_trial["genome"])
    device = resolve_device(ctx.device)
    net, stats = evaluator.train(genome, seed=ctx.seed, device=str(device), epochs=evaluator.config.final_epochs,
                                 desc="final training")
    run_dir = Path(ctx.run_dir) if ctx.run_dir else Path(".")
    run_dir.mkdir(parents=True, exist_ok=True)
    info = space.describe(genome)
    summary: dict[str, Any] = {"trial": best_trial["id"], "layout": info["layout"], "params": info["params"],
                               "mult_adds_G": round(info["mult_adds"] / 1e9, 3), "scale": space.scale,
                               "final_epochs": stats.epochs, "final_seconds": round(stats.seconds, 1), "sets": {}}
    picture_done = False
    for spec in evaluator.config.eval_sets:
        name, folder = spec.split(":", 1)
        _, lrs, hrs = load_pairs(folder, space.scale)
        searched = score_images(net, lrs, hrs, space.scale, device)
        bicubic = score_images(None, lrs, hrs, space.scale)
        summary["sets"][name] = {"images": len(hrs), "searched": searched, "bicubic": bicubic}
        if not picture_done:
            bic, sr = upscale_bicubic(lrs[0], space.scale), super_resolve(net, lrs[0], device)
            titles = (f"bicubic (whole image {float(psnr(bic, hrs[0], border=space.scale)):.2f} dB)",
                      f"searched (whole image {float(psnr(sr, hrs[0], border=space.scale)):.2f} dB)",
                      f"HR ({name}, first image)")
            side_by_side(run_dir / "sr_comparison.png", bic, sr, hrs[0], titles=titles)
            summary["picture"] = str(run_dir / "sr_comparison.png")
            picture_done = True
    summary["model"] = str(export_model(net.cpu(), genome, space, run_dir / "model"))
    (run_dir / "sr_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


# --------------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------------

def make_space(config: SRSpaceConfig, ctx: Context | None = None) -> SRBlockSpace:
    from searchlab.search_spaces.sr_blocks import parse_size

    return SRBlockSpace(scale=config.scale, g0=config.g0, slots=config.slots, min_blocks=config.min_blocks,
                        params=config.params, max_mult_adds=parse_size(config.max_mult_adds), skip=config.skip)


registry.register_space(
    "sr", factory=make_space, config=SRSpaceConfig, default_strategy="esrn", default_evaluator="sr-proxy",
    finalize=finalize,
    help="super-resolution residual dense block chains (ESRN, Song et al. AAAI 2020)")
registry.register_strategy(
    "esrn", config=ESRNConfig, spaces=("sr",),
    factory=lambda space, config, *, seed, objectives: ESRNStrategy(space, config, seed, objectives),
    help="generational GA with block credits (ESRN)")
registry.register_evaluator(
    "sr-proxy", config=SRProxyConfig, spaces=("sr",),
    factory=lambda space, config, ctx: SRProxyEvaluator(space, config, ctx),
    help="short L1/Adam training on HR crops, PSNR on held-out images")
