"""width-ga: a compression-style search as a plug-in package, written against searchlab's core and contracts.

It searches the filters of each layer of a small CNN under a parameter budget. The GA core supplies the
budget rule, elitism, parent selection, the history and the JSON state; this file supplies the genome
(one width index per layer), the variation, a brief training as fitness and a final step that trains
the best network longer and writes it to the run. Load it with SEARCHLAB_PLUGINS=width_ga and run:

    searchlab search widths --data mnist:DIR --max-params 0.3 --population 6 --generations 3 --run runs/w
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from searchlab import io, registry
from searchlab.training.data import load_classification, split_holdout
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.evolvers import operators
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.ga import GenerationalGA, check_ga_options
from searchlab.options import opt
from searchlab.protocols import Result
from searchlab.size_target import SizeBudget, parse_target, target_opt
from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier

WIDTHS = (4, 8, 12, 16, 24, 32)  # the filters a layer may keep
LAYERS = 3


@dataclass(frozen=True)
class WidthsConfig:
    """width search: data, size budget, genetic algorithm, training"""

    data: str = opt("", help="labelled images, KIND:PATH (mnist, cifar10, imagefolder)")
    max_params: str = target_opt("parameters", "the widest network's", default="0.3")
    population: int = opt(6, help="networks per generation")
    generations: int = opt(3, help="generations, the random first one included")
    elite: int = opt(1, help="best networks carried unchanged into the next generation")
    mut_prob: float = opt(0.3, help="probability that each layer's width is redrawn in a child")
    epochs: float = opt(1.0, help="training epochs of each candidate (the best gets 3x at the end)")

    def __post_init__(self) -> None:
        check_ga_options(self.population, self.generations, elite=self.elite, mut_prob=self.mut_prob)
        parse_target(self.max_params, "params")
        if not self.data:
            raise ConfigError("pass the images with --data KIND:PATH, e.g. --data mnist:data/mnist")


class WidthSpace:
    """Genome: one index into WIDTHS per layer. Reads the data once; `budget` is the core's size budget."""

    name = "widths"

    def __init__(self, config: WidthsConfig) -> None:
        self.config, data = config, load_classification(config.data)
        self.train, self.val = split_holdout(data.train, val_fraction=0.2, seed=0)
        self.test, self.channels, self.classes = data.test or self.val, int(data.train.x.shape[1]), data.num_classes
        widest = self.params([len(WIDTHS) - 1] * LAYERS)
        target = parse_target(config.max_params, "params")
        self.budget = SizeBudget("params", target.limit(widest), widest) if target else None

    def network(self, genome: list[int]) -> nn.Module:
        layers, channels = [], self.channels
        for w in (WIDTHS[i] for i in genome):
            layers += [nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            channels = w
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, self.classes))

    def params(self, genome: list[int]) -> float:
        return float(sum(p.numel() for p in self.network(genome).parameters()))

    def sample(self, rng) -> list[int]:
        return [int(i) for i in rng.integers(len(WIDTHS), size=LAYERS)]

    def mutate(self, genome: list[int], rng) -> list[int]:
        layer, width = int(rng.integers(LAYERS)), int(rng.integers(len(WIDTHS) - 1))
        return [(g + 1 + width) % len(WIDTHS) if i == layer else g for i, g in enumerate(self.validate(genome))]

    def validate(self, genome) -> list[int]:
        if not isinstance(genome, list) or len(genome) != LAYERS or any(g not in range(len(WIDTHS)) for g in genome):
            raise InvalidArchitecture(f"a genome is {LAYERS} indices into the widths {WIDTHS}")
        return [int(g) for g in genome]

    def key(self, genome: list[int]) -> str:
        return "-".join(str(WIDTHS[i]) for i in self.validate(genome))

    def describe(self, genome: list[int]) -> dict:
        return {"widths": [WIDTHS[i] for i in self.validate(genome)], "params": self.params(genome)}


class WidthGA(GenerationalGA):
    """Tournament parents, uniform crossover, redrawn widths; every child repaired into the budget."""

    label = "width-ga"

    def __init__(self, space: WidthSpace, seed: int) -> None:
        super().__init__(space, seed, space.config.generations, budget=space.budget)
        self.config, self.carried = space.config, []
        self.pending = [self.fit_budget(space.sample(self.rng)) for _ in range(self.config.population)]

    def size(self, genome: list[int]) -> float:
        return self.space.params(genome)

    def shrink(self, genome: list[int], rng) -> list[int] | None:  # one layer one width narrower
        return self._step(genome, rng, -1)

    def grow(self, genome: list[int], rng) -> list[int] | None:  # one layer one width wider
        return self._step(genome, rng, +1)

    def _step(self, genome: list[int], rng, step: int) -> list[int] | None:
        layers = [i for i, g in enumerate(genome) if 0 <= g + step < len(WIDTHS)]
        layer = int(rng.choice(layers)) if layers else None
        return None if layer is None else [g + step * (i == layer) for i, g in enumerate(genome)]

    def score(self, genome, result: Result) -> float | None:
        return float(result.objectives["accuracy"]) if result.ok else None

    def end_generation(self) -> None:
        self.record(self.carried + self.members())

    def breed(self) -> list[list[int]]:
        scored = self.carried + self.members()
        self.carried = self.elites(scored, self.config.elite)
        genomes, fitness = [m["genome"] for m in scored], [m["fitness"] for m in scored]
        children = []
        while len(children) < self.config.population - len(self.carried):
            a, b = self.parents(genomes, fitness, 2, operators.sel_tournament, tournsize=2)
            with deap_random(self.rng):
                child, _ = operators.cx_uniform(a, b, 0.5)
                child = operators.mut_uniform_int(child, 0, len(WIDTHS) - 1, self.config.mut_prob)
            children.append(self.fit_budget([int(g) for g in child]))
        return children

    def extra_state(self) -> dict:
        return {"carried": self.carried}

    def load_extra_state(self, state: dict) -> None:
        self.carried = [dict(m) for m in state["carried"]]


class BriefTraining:
    """A candidate's accuracy on held-out training images after a short training with the shared trainer."""

    objectives = {"accuracy": "max", "params": "min"}

    def __init__(self, space: WidthSpace) -> None:
        self.space = space

    def train(self, genome: list[int], epochs: float, seed: int, device: str) -> nn.Module:
        with torch.random.fork_rng():  # initial weights from the trial's seed, the global generator untouched
            torch.manual_seed(seed)
            net = self.space.network(genome)
        train_classifier(net, self.space.train, TrainConfig.preset("classifier", epochs=epochs), seed=seed,
                         device=device)
        return net

    def evaluate(self, genome, *, seed: int, device: str) -> Result:
        net = self.train(self.space.validate(genome), self.space.config.epochs, seed, device)
        accuracy = evaluate_classifier(net, self.space.val, device=device)["accuracy"]
        return Result("ok", {"accuracy": accuracy, "params": self.space.params(genome)})


def finalize(space: WidthSpace, evaluator: BriefTraining, best: dict, ctx) -> dict:
    """Train the best network three times longer, score it on the test images, write it to the run."""
    net = evaluator.train(best["genome"], 3 * space.config.epochs, ctx.seed, ctx.device)
    summary = {**space.describe(best["genome"]), "test_accuracy": evaluate_classifier(net, space.test)["accuracy"],
               "budget": space.budget.summary(space.params(best["genome"])) if space.budget else None}
    io.save_safetensors(net.state_dict(), Path(ctx.run_dir) / "best_widths.safetensors")
    io.write_json(Path(ctx.run_dir) / "best_widths.json", summary)
    return summary


registry.register_space("widths", factory=lambda config, ctx: WidthSpace(config), config=WidthsConfig,
                        default_strategy="width-ga", default_evaluator="brief-training",
                        help="per-layer widths of a small CNN under a parameter budget (example plug-in)")
registry.register_strategy("width-ga", factory=lambda space, config, *, seed, objectives: WidthGA(space, seed),
                           spaces=("widths",), help="GA on the core with the size budget (example plug-in)")
registry.register_evaluator("brief-training", factory=lambda space, config, ctx: BriefTraining(space),
                            spaces=("widths",), finalize=finalize, help="short training, held-out accuracy")
