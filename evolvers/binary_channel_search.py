"""Binary channel search (Shen et al., ICCVW 2019): a DEAP genetic algorithm over per-layer widths.

Each candidate is a binary network whose layer widths are base widths times ratios chosen per layer
(see `search_spaces.binary_widths`). It is trained briefly on the shared trainer and scored on a
held-out part of the training set. Fitness trades accuracy against computation:

    fitness = accuracy - lam * cost_ratio,   cost_ratio = (FLOPs + BOPs/64) / (FLOPs + BOPs/64 of the 1x binary net)

and, with a hard budget `max_flops_ratio` R > 0, only candidates with cost_ratio <= R are ever
proposed. The GA keeps `elite` best individuals, fills the rest of each generation with children of
tournament-selected parents (uniform crossover, uniform-integer mutation; DEAP operators) and never
re-proposes a code already evaluated when it can find a new one. At the end the best candidate is
trained longer, and a Pareto plot of accuracy against FLOPs + BOPs/64 is written to the run directory.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA
from searchlab import registry
from searchlab.errors import ConfigError, DataError
from searchlab.options import opt
from searchlab.protocols import Context, Genome, Result
from searchlab.seeding import make_rng
from searchlab.search_spaces.binary_widths import BinarySpaceConfig, BinaryWidthSpace, account, build_network, preset_ratios

MAX_TRIES = 50


# ------------------------------------------------------------------------------------------------
# strategy
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BinaryGAConfig:
    """genetic algorithm over binary widths"""

    population: int = opt(8, help="individuals per generation")
    generations: int = opt(4, help="generations to evaluate, the first one included")
    elite: int = opt(1, help="best individuals carried unchanged into the next generation")
    tournament: int = opt(2, help="tournament size for parent selection")
    cx_prob: float = opt(0.5, help="probability that two parents are crossed (uniform crossover)")
    mut_prob: float = opt(0.2, help="probability that each layer's ratio is redrawn in a child")
    lam: float = opt(0.0, help="penalty per unit of cost ratio: fitness = accuracy - lam * cost_ratio")
    max_flops_ratio: float = opt(2.0, help="hard budget: FLOPs+BOPs/64 at most this times the 1x binary "
                                           "network's (0 = no budget)")
    seed_1x: bool = opt(True, help="put the plain 1x binary network into the first generation")

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ConfigError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise ConfigError(f"--generations must be at least 1, got {self.generations}")
        if not 0 <= self.elite < self.population:
            raise ConfigError(f"--elite must be between 0 and --population - 1 ({self.population - 1})")
        if not 1 <= self.tournament <= self.population:
            raise ConfigError(f"--tournament must be between 1 and --population ({self.population})")
        for name in ("cx_prob", "mut_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError(f"--lam must be >= 0, got {self.lam}")
        if not math.isfinite(self.max_flops_ratio) or self.max_flops_ratio < 0:
            raise ConfigError(f"--max-flops-ratio must be >= 0 (0 = no budget), got {self.max_flops_ratio}")


def fitness(result: Result | None, cost_ratio: float, lam: float) -> float | None:
    """accuracy - lam * cost_ratio, or None for a failed candidate."""
    if result is None or not result.ok or "accuracy" not in result.objectives:
        return None
    return float(result.objectives["accuracy"]) - lam * cost_ratio


def _member(genome: list[int], score: float | None) -> dict:
    return {"genome": [int(v) for v in genome], "fitness": None if score is None else float(score)}


class BinaryChannelGA(GenerationalGA):
    """Generational GA with elitism: each generation is the carried elites plus newly bred, never-seen
    children that meet the budget; the whole state is JSON."""

    label = "binary-ga"

    def __init__(self, space: BinaryWidthSpace, config: BinaryGAConfig, seed: int) -> None:
        super().__init__(space, seed, config.generations)
        self.config = config
        budget = config.max_flops_ratio
        if budget > 0:
            cheapest = space.cost_ratio(space.min_genome())
            if cheapest > budget:
                raise ConfigError(f"no candidate meets --max-flops-ratio {budget:g}: the cheapest {space.net} "
                                  f"(every ratio {space.ratios[0]:g}) costs {cheapest:.3f}x the 1x binary network; "
                                  f"raise the budget to at least {math.ceil(cheapest * 100) / 100:g} or allow "
                                  f"smaller --ratios")
        self.population: list[dict] = []  # [{"genome", "fitness"}] of the last finished generation
        self.carried: list[dict] = []  # elites of the last generation, part of the current one
        self.seen: set[str] = set()
        self.toolbox = self._toolbox()
        self.pending = self._first_generation()

    def _toolbox(self):
        from deap import base

        toolbox = base.Toolbox()
        toolbox.register("select", operators.sel_tournament, tournsize=self.config.tournament)
        toolbox.register("mate", operators.cx_uniform, indpb=0.5)
        toolbox.register("mutate", operators.mut_uniform_int, low=0, up=len(self.space.ratios) - 1,
                         indpb=self.config.mut_prob)
        return toolbox

    # helpers
    def feasible(self, genome: list[int]) -> bool:
        return self.config.max_flops_ratio <= 0 or self.space.cost_ratio(genome) <= self.config.max_flops_ratio + 1e-9

    def _novel(self, genome: list[int], taken: set[str]) -> bool:
        key = self.space.key(genome)
        return self.feasible(genome) and key not in self.seen and key not in taken

    def _random_feasible(self, taken: set[str]) -> list[int]:
        fallback = None
        for _ in range(MAX_TRIES * 4):
            g = self.space.sample(self.rng)
            if self._novel(g, taken):
                return g
            if fallback is None and self.feasible(g):
                fallback = g
        return fallback if fallback is not None else self.space.min_genome()

    def _first_generation(self) -> list[list[int]]:
        out: list[list[int]] = []
        taken: set[str] = set()
        one_x = self.space.one_x()
        if self.config.seed_1x and self.feasible(one_x):
            out.append(one_x)
            taken.add(self.space.key(one_x))
        while len(out) < self.config.population:
            g = self._random_feasible(taken)
            out.append(g)
            taken.add(self.space.key(g))
        return out

    def _offspring(self, count: int, taken: set[str]) -> list[list[int]]:
        """`count` children of tournament-selected parents (uniform crossover, uniform-integer mutation),
        pushed away from seen codes by the space's mutation, or fresh samples when that fails."""
        tb = self.toolbox
        genomes = [m["genome"] for m in self.population]
        weights = [-math.inf if m["fitness"] is None else m["fitness"] for m in self.population]
        children: list[list[int]] = []
        while len(children) < count:
            child = None
            for _ in range(MAX_TRIES):
                with deap_random(self.rng):
                    a, b = tb.select(genomes, weights, 2)
                    if random.random() < self.config.cx_prob:
                        a, b = tb.mate(a, b)
                    a = tb.mutate(a)
                candidate = [int(v) for v in a]
                if self._novel(candidate, taken):
                    child = candidate
                    break
                # an unchanged or already-seen code: push it away with the space's own mutation
                candidate = self.space.mutate(candidate, self.rng)
                if self._novel(candidate, taken):
                    child = candidate
                    break
            if child is None:
                child = self._random_feasible(taken)
            children.append(child)
            taken.add(self.space.key(child))
        return children

    # the GA hooks
    def score(self, genome: Genome, result: Result) -> float | None:
        self.seen.add(self.space.key(genome))
        return fitness(result, self.space.cost_ratio(genome), self.config.lam)

    def end_generation(self) -> None:
        """The generation is the carried elites plus the evaluated children; its best `elite` go on."""
        self.population = self.carried + [_member(g, f) for g, f in zip(self.pending, self.scores)]
        self.carried = sorted(self.population, key=lambda m: -math.inf if m["fitness"] is None else m["fitness"],
                              reverse=True)[: self.config.elite]

    def breed(self) -> list[Genome]:
        taken = {self.space.key(m["genome"]) for m in self.population}
        return self._offspring(self.config.population - len(self.carried), taken)

    def extra_state(self) -> dict:
        return {"population": self.population, "carried": self.carried, "seen": sorted(self.seen)}

    def load_extra_state(self, state: dict) -> None:
        self.population = [_member(m["genome"], m["fitness"]) for m in state["population"]]
        self.carried = [_member(m["genome"], m["fitness"]) for m in state["carried"]]
        self.seen = set(state["seen"])


# ------------------------------------------------------------------------------------------------
# evaluator
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BinaryTrainConfig:
    """short training of each candidate"""

    data: str = opt("", help="labelled images: cifar10:PATH, imagefolder:PATH (a tree or .tar.gz) or mnist:PATH")
    train_size: int = opt(5000, help="training images per candidate (0 = all but the held-out part)")
    val_fraction: float = opt(0.1, help="part of the training set held out to score candidates")
    val_size: int = opt(2000, help="held-out images used for scoring (0 = the whole held-out part)")
    epochs_per_candidate: int = opt(2, help="training epochs of each candidate")
    batch_size: int = opt(128, help="minibatch size")
    lr: float = opt(0.002, help="Adam learning rate (cosine schedule)")
    max_seconds_per_candidate: float = opt(0.0, help="stop a candidate's training after this many seconds (0 = no limit)")
    final_epochs: int = opt(10, help="epochs for training the best candidate at the end")
    final_train_size: int = opt(0, help="training images for the final model (0 = the same as --train-size)")
    compare_baselines: bool = opt(False, help="at the end also train the 1x binary and full-precision networks "
                                              "with the same budget and report the accuracy gap closed")

    def __post_init__(self) -> None:
        if self.train_size < 0 or self.final_train_size < 0 or self.val_size < 0:
            raise ConfigError("--train-size, --final-train-size and --val-size must be >= 0 (0 = all)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.epochs_per_candidate < 1 or self.final_epochs < 1:
            raise ConfigError("--epochs-per-candidate and --final-epochs must be at least 1")
        if self.batch_size < 1 or not self.lr > 0 or self.max_seconds_per_candidate < 0:
            raise ConfigError("--batch-size and --lr must be positive, --max-seconds-per-candidate >= 0")


class BinaryTrainEvaluator:
    """Trains a candidate briefly on the shared trainer; accuracy on the held-out split plus its accounting."""

    objectives = {"accuracy": "max", "flops_bops64": "min", "cost_ratio": "min", "size_bits": "min", "params": "min"}

    def __init__(self, space: BinaryWidthSpace, config: BinaryTrainConfig, ctx: Context) -> None:
        if not config.data:
            raise ConfigError("the binary search trains every candidate: pass --data, e.g. "
                              "--data imagefolder:data/cifar10_jpg.tar.gz or --data cifar10:data/cifar-10-batches-py")
        from searchlab.data import parse_data_spec

        parse_data_spec(config.data)  # a malformed spec fails now, before the run is created
        self.space = space
        self.config = config
        self.ctx = ctx
        self._splits: tuple | None = None

    def splits(self):
        """(train pool in a seeded order, val, test or None, num_classes), read once; fixed by the run seed."""
        if self._splits is None:
            from searchlab.data import load_classification, split_holdout

            data = load_classification(self.config.data, image_size=self.space.config.image_size)
            if data.train.x.shape[1] != 3:
                raise DataError(f"{self.config.data}: binary networks take 3-channel images, got "
                                f"{data.train.x.shape[1]} channels")
            pool, val = split_holdout(data.train, val_fraction=self.config.val_fraction, seed=self.ctx.seed)
            rng = make_rng(self.ctx.seed)
            pool = pool.subset(rng.permutation(len(pool)))
            if self.config.val_size and self.config.val_size < len(val):
                val = val.subset(np.sort(rng.permutation(len(val))[: self.config.val_size]))
            self._splits = (pool, val, data.test, data.num_classes)
        return self._splits

    def _train_cfg(self, epochs: int, max_seconds: float = 0.0):
        from searchlab.trainer import TrainConfig

        return TrainConfig(epochs=epochs, batch_size=self.config.batch_size, optimizer="adam", lr=self.config.lr,
                           weight_decay=0.0, schedule="cosine", max_seconds=max_seconds or None, augment=True)

    def train(self, ratios: list[float], *, binary: bool, epochs: int, seed: int, device: str,
              train_size: int = 0, max_seconds: float = 0.0, test: bool = False):
        """Train one network (ratios given directly) on the first `train_size` pool images -> (model, metrics)."""
        import torch
        from searchlab.trainer import evaluate_classifier, train_classifier

        pool, val, test_set, num_classes = self.splits()
        train = pool.subset(np.arange(min(train_size, len(pool)))) if train_size else pool
        cfg = self.space.config
        with torch.random.fork_rng(devices=[]):  # seeded weight init without touching global state
            torch.manual_seed(seed)
            model = build_network(self.space.net, ratios, binary=binary, num_classes=num_classes, act=cfg.act,
                                  width_scale=cfg.width_scale, image_size=cfg.image_size)
        stats = train_classifier(model, train, self._train_cfg(epochs, max_seconds), seed=seed, device=device,
                                 verbose=self.ctx.verbose)
        metrics = {"accuracy": float(evaluate_classifier(model, val, device=device)["accuracy"])}
        if test and test_set is not None:
            metrics["test_accuracy"] = float(evaluate_classifier(model, test_set, device=device)["accuracy"])
        metrics.update(account(model, cfg.image_size))
        metrics["train_images"] = float(len(train))
        metrics["epochs"] = float(stats.epochs)
        metrics["seconds"] = float(stats.seconds)
        return model, metrics

    def evaluate(self, genome: Genome, *, seed: int, device: str) -> Result:
        from searchlab.trainer import run_guarded

        ratios = self.space.ratios_of(genome)

        def work() -> Result:
            _, m = self.train(ratios, binary=True, epochs=self.config.epochs_per_candidate, seed=seed, device=device,
                              train_size=self.config.train_size, max_seconds=self.config.max_seconds_per_candidate)
            m["cost_ratio"] = m["flops_bops64"] / self.space.base_cost()
            objectives = {k: m[k] for k in self.objectives}
            return Result("ok", objectives, {"seconds": m["seconds"], "epochs": m["epochs"]})

        return run_guarded(work)


# ------------------------------------------------------------------------------------------------
# finalize: Pareto plot, the best trained longer, optional baselines
# ------------------------------------------------------------------------------------------------

def _evaluated_trials(run_dir: Path) -> tuple[list[dict], dict]:
    from searchlab.run_store import RunStore

    store = RunStore.open(run_dir)
    try:
        config = store.config
        rows = [{"id": t.id, "key": t.key, "genome": t.genome, "result": t.result} for t in store.trials()
                if t.cached_from is None and t.result is not None and t.result.ok]
    finally:
        store.close()
    return rows, config


def pareto_plot(points: list[dict], path: Path, *, best_key: str | None, budget: float, title: str) -> Path:
    """Accuracy against cost ratio for every evaluated candidate; the Pareto front joined; best ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["cost_ratio"] for p in points]
    ys = [100 * p["accuracy"] for p in points]
    front = sorted((i for i in range(len(points)) if not any(
        xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j] < xs[i] or ys[j] > ys[i]) for j in range(len(points)))),
        key=lambda i: xs[i])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(xs, ys, s=18, alpha=0.6, label="evaluated candidates")
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "r.-", label="Pareto front")
    for p, x, y in zip(points, xs, ys):
        if p["key"] == best_key:
            ax.scatter([x], [y], s=120, facecolors="none", edgecolors="k", label="best (fitness)")
        if p.get("is_1x"):
            ax.annotate("1x", (x, y), textcoords="offset points", xytext=(4, -10))
    if budget > 0:
        ax.axvline(budget, color="gray", ls="--", lw=1, label=f"budget {budget:g}x")
    ax.set_xlabel("FLOPs + BOPs/64, relative to the 1x binary network")
    ax.set_ylabel("held-out accuracy after short training (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _save_model(model: Any, info: dict, run_dir: Path, stem: str) -> None:
    """Weights as safetensors, the network's description as JSON, each written atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = run_dir / f"{stem}.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, run_dir / f"{stem}.safetensors")
    tmp = run_dir / f"{stem}.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, run_dir / f"{stem}.json")


def finalize(space: BinaryWidthSpace, evaluator: BinaryTrainEvaluator, best_trial: dict, ctx: Context) -> dict:
    """Pick the best by fitness, plot every candidate, train the best longer and save it (and baselines)."""
    from tqdm import tqdm

    run_dir = Path(ctx.run_dir)
    rows, config = _evaluated_trials(run_dir)
    strat = config.get("strategy_config", {})
    lam = float(strat.get("lam", 0.0))
    budget = float(strat.get("max_flops_ratio", 0.0))
    one_x_key = space.key(space.one_x())
    points = []
    for r in rows:
        ratio = space.cost_ratio(r["genome"])
        points.append({"key": r["key"], "genome": r["genome"], "ratios": space.ratios_of(r["genome"]),
                       "accuracy": r["result"].objectives["accuracy"], "cost_ratio": ratio,
                       "fitness": fitness(r["result"], ratio, lam), "is_1x": r["key"] == one_x_key})
    if not points:
        return {}
    in_budget = [p for p in points if budget <= 0 or p["cost_ratio"] <= budget + 1e-9] or points
    best = max(in_budget, key=lambda p: p["fitness"])
    plot = pareto_plot(points, run_dir / "pareto.png", best_key=best["key"], budget=budget,
                       title=f"binary {space.net}: {len(points)} candidates")
    summary = {"best_ratios": best["ratios"], "best_key": best["key"], "best_search_accuracy": best["accuracy"],
               "best_cost_ratio": best["cost_ratio"], "pareto_plot": str(plot)}
    if not isinstance(evaluator, BinaryTrainEvaluator):  # another evaluator: nothing to train here
        return summary
    ec = evaluator.config
    jobs = [("best", best["ratios"], True)]
    if ec.compare_baselines:
        jobs += [("binary-1x",) + tuple(preset_ratios(space.net, "binary-1x")),
                 ("full-precision",) + tuple(preset_ratios(space.net, "full-precision"))]
    final_size = ec.final_train_size or ec.train_size
    results = {}
    for name, ratios, binary in tqdm(jobs, desc="final training", disable=not ctx.verbose and len(jobs) == 1,
                                     file=sys.stderr):
        model, m = evaluator.train(ratios, binary=binary, epochs=ec.final_epochs, seed=ctx.seed, device=ctx.device,
                                   train_size=final_size, test=True)
        m["cost_ratio"] = m["flops_bops64"] / space.base_cost()
        results[name] = {"ratios": ratios, "binary": binary, **m}
        if name == "best":
            _save_model(model, {"net": space.net, "ratios": ratios, "binary": True, "act": space.config.act,
                                "width_scale": space.config.width_scale, "image_size": space.config.image_size,
                                "widths": getattr(model, "widths", None), **m}, run_dir, "best_model")
    summary["final_model"] = str(run_dir / "best_model.safetensors")
    top = sorted(in_budget, key=lambda p: p["fitness"], reverse=True)[:5]
    summary["top_codes"] = [{"ratios": p["ratios"], "accuracy": round(p["accuracy"], 4),
                             "cost_ratio": round(p["cost_ratio"], 3)} for p in top]
    metric = "test_accuracy" if "test_accuracy" in results["best"] else "accuracy"
    summary["final_" + metric] = results["best"][metric]
    if ec.compare_baselines:
        b, f, s = (results[k][metric] for k in ("binary-1x", "full-precision", "best"))
        summary["binary_1x_" + metric] = b
        summary["full_precision_" + metric] = f
        # share of the (full precision - 1x binary) gap the searched net closes; undefined without a gap
        summary["gap_closed"] = (s - b) / (f - b) if f > b else None
    tmp = run_dir / "final.json.tmp"
    tmp.write_text(json.dumps({"summary": summary, "models": results, "candidates": points}, indent=2, default=str))
    os.replace(tmp, run_dir / "final.json")
    return summary


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------

registry.register_space(
    "binary", config=BinarySpaceConfig, factory=lambda config, ctx: BinaryWidthSpace(config),
    default_strategy="binary-ga", default_evaluator="binary-train", finalize=finalize,
    help="per-layer widths of a binary VGG-Small or ResNet-18 (Shen et al. 2019); e.g.\n"
         "  searchlab search binary --net vgg-small --data imagefolder:cifar10_jpg.tar.gz --population 8 \\\n"
         "      --generations 4 --epochs-per-candidate 2 --max-flops-ratio 2.0 --run runs/binary")
registry.register_strategy(
    "binary-ga", config=BinaryGAConfig, spaces=("binary",),
    factory=lambda space, config, *, seed, objectives: BinaryChannelGA(space, config, seed),
    help="DEAP genetic algorithm with elitism; fitness = accuracy - lam * cost ratio under a hard budget")
registry.register_evaluator(
    "binary-train", config=BinaryTrainConfig, spaces=("binary",),
    factory=lambda space, config, ctx: BinaryTrainEvaluator(space, config, ctx),
    help="short training on the shared trainer, accuracy on a held-out split")
