"""Evolutionary filter pruning (Wang et al., "Towards Evolutionary Compression", KDD 2018).

Each candidate is a bit string, one bit per prunable filter group of a trained CNN (1 = keep); a DEAP
genetic algorithm evolves a population of them by fitness, and the fittest mask is cut out of the
network physically and fine-tuned with the shared trainer.

Fitness of a mask m (higher is better), on a held-out subset of the training data:

    fitness(m) = (1 - lam) * perf(m) + lam * removed(m)

perf is the masked network's accuracy (`--fitness-metric accuracy`, the default) or exp(-cross-entropy)
(`loss`), both in [0, 1]; removed is the fraction of prunable filters removed (`--size-measure filters`,
the default) or the fraction of FLOPs removed (`flops`). lam in [0, 1) weighs size against accuracy
(default 0.3). Fitness is never negative, so roulette selection applies directly.

This module registers the space `prune`, the strategy `prune-ga` and the evaluator `masked-fitness`;
the space's finalize hook writes the pruned model, its architecture JSON, a report and a plot.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from searchlab.search_spaces.filter_masks import (FilterMaskSpace, Genome, MaskedNetwork, analyse, bits_of, cost,
                                        genome_of, measured_flops, prune_model)
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA
from searchlab import progress, registry
from searchlab.errors import ConfigError, DataError
from searchlab.options import opt
from searchlab.protocols import Context, Result

SPLIT_SEED = 0  # data splits are fixed so runs with different seeds are compared on the same images
ARCH_FORMAT = "searchlab-pruned/1"


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PruneConfig:
    """Filter pruning: model, data, fitness"""

    model: str = opt("lenet5", help="built-in classifier (lenet5, vgg_small, resnet20, resnet56) or "
                                     "package.module:factory returning an nn.Module")
    weights: str = opt("", help="trained state dict of the model (.pt/.pth loaded weights-only, or .safetensors); "
                                "empty: pretrain for --pretrain-epochs, once per run")
    data: str = opt("", help="labelled data, KIND:PATH with KIND cifar10, mnist or imagefolder")
    image_size: int = opt(0, help="resize images to this side (0: keep the data's size)")
    test_size: int = opt(2000, help="images held out as the test set when the data has no test split")
    train_size: int = opt(0, help="use at most this many training images for (pre)training (0: all)")
    val_size: int = opt(1000, help="training images held out to score candidates (the fitness subset)")
    pretrain_epochs: float = opt(10.0, help="epochs to pretrain the model when no --weights are given")
    layers: list[str] = opt([], help="convolutions to prune, by module name (default: every convolution "
                                     "except the network's last layer), e.g. --layers conv1 conv2")
    lam: float = opt(0.3, help="weight of the removed fraction in the fitness, in [0, 1)")
    fitness_metric: str = opt("accuracy", help="performance term of the fitness", choices=("accuracy", "loss"))
    size_measure: str = opt("filters", help="what 'removed' counts", choices=("filters", "flops"))
    candidate_steps: int = opt(0, help="fine-tune each candidate for this many SGD steps before scoring it (0: off)")
    finetune_epochs: float = opt(10.0, help="epochs to fine-tune the best pruned network after the search")
    lr: float = opt(0.05, help="learning rate for pretraining (fine-tuning uses lr/5)")
    batch_size: int = opt(128, help="training batch size")

    def __post_init__(self) -> None:
        if not (0.0 <= self.lam < 1.0) or not math.isfinite(self.lam):
            raise ConfigError(f"--lam must be in [0, 1) (weight of the removed fraction), got {self.lam}")
        for name in ("test_size", "train_size", "candidate_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.val_size < 1:
            raise ConfigError(f"--val-size must be at least 1, got {self.val_size}")
        if self.pretrain_epochs < 0 or self.finetune_epochs < 0:
            raise ConfigError("--pretrain-epochs and --finetune-epochs must be >= 0")
        if not self.data:
            raise ConfigError("pass the data to prune on with --data KIND:PATH, e.g. --data mnist:data/mnist")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if not self.weights and self.pretrain_epochs <= 0:  # said now, not after the data has been read
            raise ConfigError("pass trained --weights PATH or --pretrain-epochs E (> 0) to train the model first")


@dataclass(frozen=True)
class PruneGAConfig:
    """Genetic algorithm (DEAP operators)"""

    population: int = opt(32, help="individuals per generation (the first generation holds the unpruned network)")
    generations: int = opt(30, help="generations to evolve, the first included")
    selection: str = opt("roulette", help="parent selection", choices=("roulette", "tournament"))
    tournament_size: int = opt(3, help="contestants per tournament (--selection tournament)")
    cx_prob: float = opt(0.6, help="probability that a pair of parents is recombined by two-point crossover")
    mut_prob: float = opt(0.4, help="probability that a child is mutated")
    segment_prob: float = opt(0.3, help="share of mutations that flip a whole segment (the rest flip single bits)")
    bit_prob: float = opt(0.0, help="per-bit flip probability of bit-flip mutation (0: 1 / genome length)")
    elite: int = opt(2, help="best individuals copied unchanged into the next generation")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError("--population must be at least 2")
        if self.generations < 1:
            raise ConfigError("--generations must be at least 1")
        if not 0 <= self.elite < self.population:
            raise ConfigError(f"--elite must be between 0 and --population - 1, got {self.elite}; for --population "
                              f"{self.population} pass --elite {max(0, self.population - 1)} or less")
        if not 1 <= self.tournament_size <= self.population:
            raise ConfigError(f"--tournament-size must be between 1 and --population, got {self.tournament_size}")
        for name in ("cx_prob", "mut_prob", "segment_prob", "bit_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a probability in [0, 1], got {getattr(self, name)}")


# --------------------------------------------------------------------------------------------------
# the genetic algorithm
# --------------------------------------------------------------------------------------------------

class PruneGA(GenerationalGA):
    """A generational GA over filter masks: selection, two-point crossover, run/bit-flip mutation, elitism.

    The first generation holds the unpruned network and random masks; each next one keeps the `elite`
    best masks (asked again; the run store answers them) and breeds the rest.
    """

    label = "prune-ga"

    def __init__(self, space: FilterMaskSpace, config: PruneGAConfig, seed: int, objectives: dict[str, str]):
        super().__init__(space, seed, config.generations)
        self.config = config
        self.objective, mode = next(iter(objectives.items())) if objectives else ("fitness", "max")
        self.sign = 1.0 if mode == "max" else -1.0
        self.toolbox = self._toolbox()
        self.pending = ["1" * space.n_bits] + [space.sample(self.rng) for _ in range(config.population - 1)]

    def _toolbox(self):
        from deap import base

        cfg = self.config
        toolbox = base.Toolbox()
        if cfg.selection == "tournament":
            toolbox.register("select", operators.sel_tournament, tournsize=cfg.tournament_size)
        else:
            toolbox.register("select", operators.sel_roulette)
        toolbox.register("mate", operators.cx_two_point)
        toolbox.register("mutate_bits", operators.mut_flip_bit, indpb=cfg.bit_prob or 1.0 / self.space.n_bits)
        toolbox.register("mutate_run", operators.mut_flip_run)
        return toolbox

    def score(self, genome: Genome, result: Result) -> float:
        if not result.ok or self.objective not in result.objectives:
            return 0.0
        return max(0.0, self.sign * float(result.objectives[self.objective]))

    def end_generation(self) -> None:
        fit = [float(f) for f in self.scores]
        best = max(range(len(fit)), key=lambda i: (fit[i], -i))
        self.history.append({"generation": self.generation, "best": fit[best], "mean": float(np.mean(fit)),
                             "best_genome": self.pending[best]})

    def breed(self) -> list[Genome]:
        cfg, rng, tb = self.config, self.rng, self.toolbox
        fit = [float(f) for f in self.scores]
        order = sorted(range(len(fit)), key=lambda i: -fit[i])
        k = cfg.population - cfg.elite
        pool = [[int(b) for b in bits_of(g)] for g in self.pending]
        with deap_random(rng):
            if cfg.selection == "tournament" or sum(fit) > 0:
                parents = tb.select(pool, fit, k + (k % 2))
            else:  # every candidate failed: roulette has nothing to weigh
                parents = operators.sel_random(pool, k + (k % 2))
        kids = [list(p) for p in parents]
        for i in range(0, len(kids) - 1, 2):
            if rng.random() < cfg.cx_prob and len(kids[i]) >= 2:
                with deap_random(rng):
                    kids[i], kids[i + 1] = tb.mate(kids[i], kids[i + 1])
        children = []
        for kid in kids[:k]:
            if rng.random() < cfg.mut_prob:
                if rng.random() < cfg.segment_prob:
                    kid = tb.mutate_run(kid, rng)
                else:
                    with deap_random(rng):
                        kid = tb.mutate_bits(kid)
            children.append(genome_of(self.space.repair(np.array(kid, dtype=bool), rng)))
        return [self.pending[i] for i in order[:cfg.elite]] + children


# --------------------------------------------------------------------------------------------------
# model, weights and data
# --------------------------------------------------------------------------------------------------

def model_kwargs(spec: str, num_classes: int, in_channels: int, image_size: int) -> dict:
    """The constructor arguments a model spec gets (stored in the architecture JSON to rebuild it)."""
    if ":" not in spec and spec.lower().replace("-", "_") in ("lenet5", "vgg_small"):
        return {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    if ":" not in spec:
        return {"num_classes": num_classes, "in_channels": in_channels}
    factory = _factory(spec)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    offered = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    return {k: v for k, v in offered.items() if k in params}


def _factory(spec: str):
    """The user's model factory named by `package.module:factory`, found on the path or in the current
    directory (where a user runs `searchlab` from their project)."""
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --model {spec} ({exc}); check the module is in the "
                          "current directory or on PYTHONPATH") from None
    finally:
        if added:
            sys.path.remove(cwd)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model {spec}: {module_name} has no callable {attr!r}")
    return factory


def build_model(spec: str, kwargs: dict) -> nn.Module:
    """A built-in classifier by name, or `package.module:factory(**kwargs)` for a user model."""
    if ":" not in spec:
        from searchlab.search_spaces.classifiers import build_classifier

        return build_classifier(spec, **kwargs)
    model = _factory(spec)(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: str, what: str = "--weights") -> None:
    """Load a state dict (weights-only torch file or safetensors) into `model`, with one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {path} does not exist; pass a state dict saved with torch.save(model.state_dict(), PATH)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's file
        raise ConfigError(f"{what} {path} is not a state dict readable weights-only "
                          f"({str(exc).splitlines()[0][:120]}); save one with torch.save(model.state_dict(), PATH)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{what} {path} is not a state dict (a mapping of names to tensors); save one with "
                          "torch.save(model.state_dict(), PATH)")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"size mismatch for {wrong[0]}: file {tuple(state[wrong[0]].shape)} vs model "
                  f"{tuple(own[wrong[0]].shape)}" if wrong else
                  f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}")
        raise ConfigError(f"{what} {path} does not match the model ({detail}; {len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(wrong)} wrong shapes); pass weights of this model")
    model.load_state_dict(state)


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write atomically: temporary file, fsync, rename."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class PruneProblem:
    """What the space, the evaluator and finalize share: the trained model and the data splits."""

    config: PruneConfig
    model: nn.Module
    kwargs: dict
    train: Any
    val: Any
    test: Any
    input_shape: list[int]
    pretrained: dict = field(default_factory=dict)


def _splits(cfg: PruneConfig):
    return _cached_splits(cfg.data, cfg.image_size, cfg.test_size, cfg.train_size, cfg.val_size)


@functools.lru_cache(maxsize=2)
def _cached_splits(data_spec: str, image_size: int, test_size: int, train_size: int, val_size: int):
    """The splits, read once per process (search, resume and finalize each rebuild the space)."""
    from searchlab.data import load_classification, split_holdout

    cfg = PruneConfig(data=data_spec, image_size=image_size, test_size=test_size, train_size=train_size,
                      val_size=val_size)
    data = load_classification(cfg.data, image_size=cfg.image_size or None)
    train, test = data.train, data.test
    if len(train) == 0:
        raise DataError(f"the data set {cfg.data} is empty; point --data at a set with labelled images")
    if test is None or len(test) == 0:
        if cfg.test_size <= 0 or cfg.test_size >= len(train):
            raise DataError(f"{cfg.data} has no test split and {len(train)} images; set --test-size between 1 and "
                            f"{len(train) - 1} to hold some out")
        train, test = split_holdout(train, val_fraction=cfg.test_size / len(train), seed=SPLIT_SEED)
    if cfg.val_size >= len(train):
        raise DataError(f"--val-size {cfg.val_size} leaves no training images (the training split has {len(train)}); "
                        "lower --val-size")
    rest = len(train) - cfg.val_size
    train, val = split_holdout(train, val_fraction=cfg.val_size / len(train), seed=SPLIT_SEED + 1,
                               train_size=min(cfg.train_size, rest) if cfg.train_size else None)
    return train, val, test, data.num_classes


def _split_digest(*parts) -> str:
    """A fingerprint of the split images and their order: stored weights are reused only for the same split."""
    import hashlib

    h = hashlib.sha1()
    for part in parts:
        h.update(part.x.numpy().tobytes())
        h.update(part.y.numpy().tobytes())
    return h.hexdigest()


def _pretrain(model: nn.Module, cfg: PruneConfig, train, val, ctx: Context) -> dict:
    """Train the model once per run; the weights go to the run directory so resume reuses them."""
    from searchlab.trainer import TrainConfig, train_classifier

    key = {"model": cfg.model, "data": cfg.data, "image_size": cfg.image_size, "test_size": cfg.test_size,
           "train_size": cfg.train_size, "val_size": cfg.val_size, "epochs": cfg.pretrain_epochs, "lr": cfg.lr,
           "batch_size": cfg.batch_size, "seed": ctx.seed, "split": _split_digest(train, val)}
    weights = meta = None
    if ctx.run_dir is not None:
        weights, meta = Path(ctx.run_dir) / "pretrained.safetensors", Path(ctx.run_dir) / "pretrained.json"
        if weights.is_file() and meta.is_file():
            info = json.loads(meta.read_text(encoding="utf-8"))
            if info.get("key") == key:
                load_weights(model, str(weights), "pretrained weights")
                return info
    tcfg = TrainConfig.preset("classifier", epochs=cfg.pretrain_epochs, lr=cfg.lr, batch_size=cfg.batch_size)
    with progress.step(f"pretraining {cfg.model} for {cfg.pretrain_epochs:g} epochs on {len(train):,} images"):
        stats = train_classifier(model, train, tcfg, seed=ctx.seed, device=ctx.device, verbose=ctx.verbose)
    model.cpu().eval()
    info = {"key": key, "seconds": stats.seconds, "steps": stats.steps, "final_loss": stats.final_loss}
    if weights is not None:
        Path(ctx.run_dir).mkdir(parents=True, exist_ok=True)
        _save_safetensors(model.state_dict(), weights)
        _write_json(info, meta)
    return info


def make_space(cfg: PruneConfig, ctx: Context) -> FilterMaskSpace:
    """Load (or pretrain) the model, split the data and analyse which filters can go."""
    train, val, test, num_classes = _splits(cfg)
    in_channels, image_size = int(train.x.shape[1]), int(train.x.shape[-1])
    kwargs = model_kwargs(cfg.model, num_classes, in_channels, image_size)
    torch.manual_seed(ctx.seed)
    model = build_model(cfg.model, kwargs).eval()
    input_shape = [1, in_channels, int(train.x.shape[-2]), image_size]
    # the analysis depends on the structure only: check the layers before spending time on training
    plan = analyse(model, torch.zeros(input_shape), layers=cfg.layers or None)
    if plan.n_bits == 0:
        FilterMaskSpace(model, plan)  # raises the "no prunable filters" error
    if cfg.weights:
        load_weights(model, cfg.weights)
        pretrained = {"weights": cfg.weights}
    elif cfg.pretrain_epochs > 0:
        pretrained = _pretrain(model, cfg, train, val, ctx)
    else:
        raise ConfigError("pass trained --weights PATH or --pretrain-epochs E (> 0) to train the model first")
    model = model.cpu().eval()
    space = FilterMaskSpace(model, plan)
    space.problem = PruneProblem(cfg, model, kwargs, train, val, test, input_shape, pretrained)  # type: ignore[attr-defined]
    return space


# --------------------------------------------------------------------------------------------------
# the masked-fitness evaluator
# --------------------------------------------------------------------------------------------------

def _filter_weights(space: FilterMaskSpace) -> np.ndarray:
    return np.array([len(g) for g in space.plan.groups], dtype=np.float64)


class MaskedFitness:
    """Scores a mask by the masked network's accuracy on the held-out subset, traded against size."""

    objectives = {"fitness": "max", "accuracy": "max", "flops": "min", "params": "min"}

    def __init__(self, space: FilterMaskSpace, ctx: Context) -> None:
        self.space = space
        self.problem: PruneProblem = space.problem  # type: ignore[attr-defined]
        self.cfg = self.problem.config
        self.masked = MaskedNetwork(self.problem.model, space.plan)
        self.group_sizes = _filter_weights(space)
        self.full = space.full_cost
        self._device: torch.device | None = None
        self._val: tuple[torch.Tensor, torch.Tensor] | None = None

    def _prepare(self, device: str) -> None:
        from searchlab.trainer import resolve_device, to_float

        dev = resolve_device(device)
        if dev != self._device:
            self.masked.to(dev)
            self._val = (to_float(self.problem.val.x).to(dev), self.problem.val.y.to(dev))
            self._device = dev

    def removed(self, genome: Genome) -> float:
        if self.cfg.size_measure == "flops":
            return 1.0 - cost(self.problem.model, self.space.plan, genome)["flops"] / self.full["flops"]
        bits = bits_of(genome)
        return float(self.group_sizes[~bits].sum() / self.group_sizes.sum())

    @torch.no_grad()
    def performance(self, forward, batch: int = 1000) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) of `forward` on the fitness subset."""
        x, y = self._val
        correct, loss = 0, 0.0
        for s in range(0, len(x), batch):
            logits = forward(x[s:s + batch]).float()
            correct += int((logits.argmax(1) == y[s:s + batch]).sum())
            loss += float(F.cross_entropy(logits, y[s:s + batch], reduction="sum"))
        return correct / len(x), loss / len(x)

    def evaluate(self, genome: Genome, *, seed: int, device: str) -> Result:
        from searchlab.trainer import run_guarded

        start = time.perf_counter()
        genome = self.space.validate(genome)
        self._prepare(device)
        return run_guarded(lambda: self._score(genome, seed, start), cost={"seconds": time.perf_counter() - start})

    def _score(self, genome: Genome, seed: int, start: float) -> Result:
        epochs = 0.0
        if self.cfg.candidate_steps > 0:
            from searchlab.trainer import TrainConfig, train_classifier

            net = prune_model(self.problem.model, self.space.plan, genome)
            tcfg = TrainConfig.preset("classifier", epochs=1.0, max_steps=self.cfg.candidate_steps,
                                      lr=self.cfg.lr / 5, batch_size=self.cfg.batch_size, schedule="constant")
            stats = train_classifier(net, self.problem.train, tcfg, seed=seed, device=self._device)
            epochs = stats.epochs
            net.eval()
            acc, loss = self.performance(net)
        else:
            acc, loss = self.performance(lambda xb: self.masked(xb, genome))
        perf = acc if self.cfg.fitness_metric == "accuracy" else math.exp(-loss)
        removed = self.removed(genome)
        c = cost(self.problem.model, self.space.plan, genome)
        fitness = (1.0 - self.cfg.lam) * perf + self.cfg.lam * removed
        return Result("ok", {"fitness": fitness, "accuracy": acc, "flops": c["flops"], "params": c["params"],
                             "loss": loss, "removed": removed},
                      {"seconds": time.perf_counter() - start, "epochs": epochs})


# --------------------------------------------------------------------------------------------------
# after the search: rebuild, fine-tune, measure, write
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def cpu_latency_ms(models: list[nn.Module], x: torch.Tensor, repeats: int = 30) -> list[float]:
    """Best CPU wall time of one forward pass of each model on the batch `x`, in ms, over `repeats` rounds
    in which the models take turns. The minimum is the run least disturbed by other processes (the median
    swings several-fold on a shared machine)."""
    models = [m.cpu().eval() for m in models]
    x = x.cpu()
    for m in models:
        for _ in range(3):
            m(x)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for i, m in enumerate(models):
            t = time.perf_counter()
            m(x)
            times[i].append(time.perf_counter() - t)
    return [1000.0 * float(np.min(t)) for t in times]


def plot_filters(kept: dict[str, list[int]], path: Path, title: str) -> Path:
    """Bar chart of filters kept per layer against the original width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(kept)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(names) + 2), 4))
    xs = np.arange(len(names))
    ax.bar(xs, [kept[n][1] for n in names], color="#d9d9d9", label="original")
    ax.bar(xs, [kept[n][0] for n in names], color="#1f77b4", label="kept")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("filters")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


MODEL_KWARGS = ("num_classes", "in_channels", "image_size")


def read_architecture(directory: str | Path, model: str | None = None) -> dict:
    """The checked architecture.json of a pruned folder. Nothing it says is imported or run: a built-in
    model is built by name, and a user factory (`package.module:factory`) only when the caller names the
    same factory in `model` (the `--model` flag), so a shared folder cannot make searchlab import code."""
    d = Path(directory)
    path = d / "architecture.json"
    if not path.is_file():
        raise ConfigError(f"{d} holds no architecture.json; pass the pruned/ folder of a prune run")
    try:
        arch = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); restore the folder a prune run wrote") from None
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        found = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise ConfigError(f"{path} is not a searchlab pruned architecture (format {found!r})")
    spec, kwargs, shape = arch.get("model"), arch.get("model_kwargs"), arch.get("input_shape")
    problems = []
    if not isinstance(spec, str) or not spec:
        problems.append("'model' must name the model")
    if not isinstance(kwargs, dict) or any(k not in MODEL_KWARGS or type(v) is not int or not 0 < v <= 65536
                                           for k, v in kwargs.items()):
        problems.append(f"'model_kwargs' may only hold {', '.join(MODEL_KWARGS)} as positive integers")
    if not (isinstance(shape, list) and len(shape) == 4 and all(type(v) is int and 0 < v <= 4096 for v in shape)):
        problems.append("'input_shape' must be 4 positive integers [1, C, H, W]")
    if not isinstance(arch.get("layers"), list) or not all(isinstance(x, str) for x in arch["layers"]):
        problems.append("'layers' must be a list of module names")
    if not isinstance(arch.get("genome"), str) or set(arch["genome"]) - {"0", "1"}:
        problems.append("'genome' must be a string of 0s and 1s")
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}; restore the folder a prune run wrote")
    if ":" in spec and model != spec:
        if model is None:
            raise ConfigError(f"{path} was pruned from the user model {spec}; searchlab does not import code a file "
                              f"names: pass --model {spec} to rebuild it with your factory")
        raise ConfigError(f"--model {model} is not the model {d} was pruned from ({spec}); pass --model {spec}")
    return arch


def load_pruned(directory: str | Path, model: str | None = None) -> nn.Module:
    """Rebuild a pruned network written by a `prune` run (its `pruned/` folder) with its trained weights.
    A folder pruned from a user model needs that model's factory named again in `model` (see
    `read_architecture`)."""
    d = Path(directory)
    arch = read_architecture(d, model)
    try:
        base = build_model(arch["model"], arch["model_kwargs"]).eval()
    except TypeError as exc:  # keyword arguments the model does not take
        raise ConfigError(f"{d / 'architecture.json'}: cannot build {arch['model']} ({exc}); restore the folder a "
                          f"prune run wrote") from None
    plan = analyse(base, torch.zeros(arch["input_shape"]), layers=arch["layers"] or None)
    if plan.n_bits != len(arch["genome"]):
        raise ConfigError(f"{d / 'architecture.json'}: the model now has {plan.n_bits} prunable groups, the mask "
                          f"{len(arch['genome'])}")
    net = prune_model(base, plan, arch["genome"])
    load_weights(net, str(d / "model.safetensors"), "pruned weights")
    return net.eval()


def inspect_pruned(directory: str | Path, *, data: str | None = None, device: str = "auto",
                   model: str | None = None) -> dict:
    """Rebuild a pruned network and describe it; with `data`, also its accuracy on that set's test split."""
    d = Path(directory)
    if (d / "pruned" / "architecture.json").is_file():
        d = d / "pruned"
    net = load_pruned(d, model)
    arch = read_architecture(d, model)
    example = torch.zeros(arch["input_shape"])
    out = {"model": arch["model"], "params": sum(p.numel() for p in net.parameters()),
           "flops": measured_flops(net, example), "kept_per_layer": arch["kept_per_layer"]}
    if data:
        from searchlab.data import load_classification
        from searchlab.trainer import evaluate_classifier

        loaded = load_classification(data, image_size=arch["input_shape"][-1])
        split = loaded.test if loaded.test is not None and len(loaded.test) else loaded.train
        if len(split) == 0:
            raise DataError(f"the data set {data} is empty; point --data at a set with labelled images")
        if tuple(split.x.shape[1:]) != tuple(arch["input_shape"][1:]):
            raise DataError(f"{data} has images of shape {tuple(split.x.shape[1:])}, the network takes "
                            f"{tuple(arch['input_shape'][1:])}")
        out.update({"images": len(split), **evaluate_classifier(net, split, device=device)})
    return out


def finalize(space: FilterMaskSpace, evaluator: MaskedFitness, best: dict, ctx: Context) -> dict:
    """Cut the best mask out of the network, fine-tune it, measure it and write model, report and plot."""
    from searchlab.trainer import TrainConfig, evaluate_classifier, train_classifier

    problem: PruneProblem = space.problem  # type: ignore[attr-defined]
    cfg = problem.config
    genome = space.validate(best["genome"])
    device = ctx.device
    base = problem.model
    before = evaluate_classifier(base, problem.test, device=device)
    base.cpu()
    pruned = prune_model(base, space.plan, genome)
    after_search = evaluate_classifier(pruned, problem.test, device=device)
    ft = {"seconds": 0.0, "epochs": 0.0}
    if cfg.finetune_epochs > 0:
        tcfg = TrainConfig.preset("classifier", epochs=cfg.finetune_epochs, lr=cfg.lr / 5, batch_size=cfg.batch_size)
        with progress.step(f"fine-tuning the pruned {cfg.model} for {cfg.finetune_epochs:g} epochs"):
            stats = train_classifier(pruned, problem.train, tcfg, seed=ctx.seed, device=device, verbose=ctx.verbose)
        ft = {"seconds": stats.seconds, "epochs": stats.epochs}
    after_ft = evaluate_classifier(pruned, problem.test, device=device)
    pruned.cpu().eval()
    base.cpu().eval()
    example = torch.zeros(problem.input_shape)
    flops_before, flops_after = measured_flops(base, example), measured_flops(pruned, example)
    params_before = sum(p.numel() for p in base.parameters())
    params_after = sum(p.numel() for p in pruned.parameters())
    from searchlab.trainer import to_float

    images = to_float(problem.test.x[:64])
    lat_before, lat_after = cpu_latency_ms([base, pruned], images[:1], repeats=50)
    lat64_before, lat64_after = cpu_latency_ms([base, pruned], images, repeats=20)
    kept = space.kept_per_layer(genome)
    report = {
        "model": cfg.model, "data": cfg.data, "best_trial": best["id"], "genome": genome,
        "params_before": params_before, "params_after": params_after,
        "flops_before": flops_before, "flops_after": flops_after,
        "compression": params_before / params_after, "flops_reduction": flops_before / flops_after,
        "test_accuracy_before": before["accuracy"], "test_accuracy_after_search": after_search["accuracy"],
        "test_accuracy_after_finetune": after_ft["accuracy"],
        "accuracy_drop_points": 100.0 * (before["accuracy"] - after_ft["accuracy"]),
        "cpu_latency_ms_before": lat_before, "cpu_latency_ms_after": lat_after, "speedup": lat_before / lat_after,
        "cpu_latency_ms_batch64_before": lat64_before, "cpu_latency_ms_batch64_after": lat64_after,
        "speedup_batch64": lat64_before / lat64_after,
        "cpu_threads": torch.get_num_threads(), "finetune": ft, "kept_per_layer": kept,
        "test_images": len(problem.test), "fitness_images": len(problem.val), "train_images": len(problem.train),
    }
    if ctx.run_dir is not None:
        out = Path(ctx.run_dir) / "pruned"
        out.mkdir(parents=True, exist_ok=True)
        _save_safetensors(pruned.state_dict(), out / "model.safetensors")
        _write_json({"format": ARCH_FORMAT, "model": cfg.model, "model_kwargs": problem.kwargs,
                     "input_shape": problem.input_shape, "layers": list(cfg.layers), "genome": genome,
                     "kept_per_layer": kept, "input_scaling": "uint8 / 127.5 - 1 (searchlab.trainer.to_float)"},
                    out / "architecture.json")
        _write_json(report, out / "report.json")
        plot_filters(kept, out / "filters.png",
                     f"{cfg.model}: {flops_before / flops_after:.2f}x fewer FLOPs, test acc "
                     f"{100 * before['accuracy']:.2f}% -> {100 * after_ft['accuracy']:.2f}%")
        report["written"] = str(out)
    return {k: report[k] for k in ("params_before", "params_after", "flops_before", "flops_after", "compression",
                                   "flops_reduction", "test_accuracy_before", "test_accuracy_after_search",
                                   "test_accuracy_after_finetune", "cpu_latency_ms_before", "cpu_latency_ms_after",
                                   "speedup", "speedup_batch64")} | ({"written": report["written"]} if "written" in report else {})


# --------------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------------

registry.register_space(
    "prune", factory=make_space, config=PruneConfig, default_strategy="prune-ga", default_evaluator="masked-fitness",
    finalize=finalize,
    help="evolutionary filter pruning of a trained CNN (Wang et al. 2018), one bit per coupled filter group; "
         "e.g. --model lenet5 --data mnist:PATH --pretrain-epochs 20 --size-measure flops --lam 0.3 "
         "--candidate-steps 30 --population 32 --generations 30 --finetune-epochs 20")
registry.register_strategy(
    "prune-ga", config=PruneGAConfig, spaces=("prune",),
    factory=lambda space, config, *, seed, objectives: PruneGA(space, config, seed, objectives),
    help="generational GA with DEAP roulette/tournament selection, two-point crossover, segment/bit-flip mutation")
registry.register_evaluator(
    "masked-fitness", config=None, spaces=("prune",),
    factory=lambda space, config, ctx: MaskedFitness(space, ctx),
    help="accuracy of the masked network on held-out training images, traded against filters removed")
