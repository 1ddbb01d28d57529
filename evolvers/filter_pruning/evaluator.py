"""The `masked-fitness` evaluator: a mask's fitness is the masked network's accuracy on the held-out
fitness subset, traded against the share of filters (or FLOPs) it removes; under a size target
(`--max-flops`, `--max-params`) the accuracy alone, since every candidate is at the budget.

Before scoring, a candidate can be given a short recovery: its BatchNorm statistics re-estimated on a
few training images (`--bn-images`, on by default under a size target: pruning shifts the statistics
each layer sees, and the stale ones make the accuracy right after pruning a poor guide to what
fine-tuning recovers), and/or a few SGD steps (`--candidate-steps`)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from searchlab.io import resolve_device
from searchlab.protocols import Context, Result
from searchlab.search_spaces.filter_masks import FilterMaskSpace, Genome, MaskedNetwork, bits_of, cost, prune_model
from searchlab.search_spaces.filter_masks.setup import PruneProblem


def _filter_weights(space: FilterMaskSpace) -> np.ndarray:
    return np.array([len(g) for g in space.plan.groups], dtype=np.float64)


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recalibrate_batchnorm(net: torch.nn.Module, data, images: int, batch_size: int, device: torch.device) -> None:
    """Re-estimate every BatchNorm's running mean and variance of `net` on `images` training images, as
    the plain average over those batches. The draw is the same for every candidate, so candidates are
    compared on the same images and a mask's score does not depend on its trial."""
    from searchlab.training.trainer import to_float

    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:images]
    net.train()
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        net(to_float(data.x[idx]).to(device))
    net.eval()


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
        # BatchNorm statistics re-estimated per candidate: under a size target, when the model has any
        self.bn_images = self.cfg.recalibration_images if has_batchnorm(self.problem.model) else 0

    def _prepare(self, device: str) -> None:
        from searchlab.training.trainer import to_float

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
        from searchlab.training.trainer import run_guarded

        start = time.perf_counter()
        genome = self.space.validate(genome)
        self._prepare(device)
        return run_guarded(lambda: self._score(genome, seed, start), cost={"seconds": time.perf_counter() - start})

    def _score(self, genome: Genome, seed: int, start: float) -> Result:
        epochs = 0.0
        if self.cfg.candidate_steps > 0 or self.bn_images > 0:
            net = prune_model(self.problem.model, self.space.plan, genome).to(self._device)
            if self.bn_images > 0:
                recalibrate_batchnorm(net, self.problem.train, self.bn_images, self.cfg.batch_size, self._device)
            if self.cfg.candidate_steps > 0:
                from searchlab.training.trainer import TrainConfig, train_classifier

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
        lam = 0.0 if self.space.budget is not None else self.cfg.lam
        fitness = (1.0 - lam) * perf + lam * removed
        return Result("ok", {"fitness": fitness, "accuracy": acc, "flops": c["flops"], "params": c["params"],
                             "loss": loss, "removed": removed},
                      {"seconds": time.perf_counter() - start, "epochs": epochs})
