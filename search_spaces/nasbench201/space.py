"""The `nasbench201` space and its `nb201-table` evaluator (registered by `plugin.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from searchlab.search_spaces.nasbench201 import spec
from searchlab.search_spaces.nasbench201.table import DATASETS, Table, check_dataset, load_table
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt
from searchlab.protocols import Context, Result


@dataclass(frozen=True)
class NB201SpaceConfig:
    """NAS-Bench-201 cell space (network shape used by build_network and --evaluator train)"""

    channels: int = opt(16, help="channels of the first stage, doubled by each reduction (the benchmark uses 16)")
    cells_per_stage: int = opt(5, help="cells in each of the 3 stages (the benchmark uses 5)")

    def __post_init__(self) -> None:
        for name in ("channels", "cells_per_stage"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


class NasBench201Space:
    """Genomes are official arch strings; the key is the functional key, so equivalent cells are one."""

    name = "nasbench201"

    def __init__(self, config: NB201SpaceConfig | None = None, table: Table | None = None) -> None:
        self.config = config or NB201SpaceConfig()
        self._table = table

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = load_table()
        return self._table

    def sample(self, rng: np.random.Generator) -> str:
        return self.table.arch(int(rng.integers(len(self.table))))

    def mutate(self, genome: Any, rng: np.random.Generator) -> str:
        """Give one random edge another operation (the benchmark's evolution baseline), until the cell
        computes something else than its parent."""
        ops = list(spec.parse(self.validate(genome)))
        parent = spec.unique_key(ops)
        for _ in range(1000):
            child = list(ops)
            edge = int(rng.integers(len(child)))
            others = [op for op in spec.OPS if op != child[edge]]
            child[edge] = others[int(rng.integers(len(others)))]
            if spec.unique_key(child) != parent:
                return spec.format_arch(child)
        raise InvalidArchitecture(f"no mutation of {genome} changes what it computes")  # pragma: no cover

    def validate(self, genome: Any) -> str:
        return spec.validate(genome)

    def key(self, genome: Any) -> str:
        return spec.unique_key(genome)

    def describe(self, genome: Any) -> dict:
        arch = self.validate(genome)
        return {"index": self.table.index(arch), "arch": arch, "key": self.key(arch)}

    def build_network(self, genome: Any, num_classes: int = 10, in_channels: int = 3, **_: Any):
        """The trainable network of a cell in the benchmark's skeleton, at this space's width and depth."""
        from searchlab.search_spaces.nasbench201.network import NasBench201Network

        return NasBench201Network(self.validate(genome), num_classes=num_classes, channels=self.config.channels,
                                  cells_per_stage=self.config.cells_per_stage, in_channels=in_channels)


@dataclass(frozen=True)
class NB201TableConfig:
    """NAS-Bench-201 table look-up"""

    dataset: str = opt("cifar10", help="whose test accuracy a cell scores: cifar10, cifar100, imagenet16-120, or "
                                       "cifar10-valid (CIFAR-10 test accuracy of networks trained on the 25,000-image "
                                       "cifar10-valid split)", choices=list(DATASETS))

    def __post_init__(self) -> None:
        check_dataset(self.dataset)


class TableEvaluator201:
    """Looks a cell up: its test accuracy after 200 epochs (mean over the benchmark's seeds) on a data set."""

    objectives = {"accuracy": "max"}

    def __init__(self, table: Table | None = None, dataset: str = "cifar10") -> None:
        self.table = table or load_table(dataset=dataset)

    def evaluate(self, genome: Any, *, seed: int, device: str = "cpu") -> Result:
        index = self.table.index(spec.validate(genome))
        return Result("ok", {"accuracy": float(self.table.test_accuracy[index])}, {"epochs": 200.0})


def finalize(space: Any, evaluator: Any, best_trial: dict, ctx: Context) -> dict | None:
    """The best cell found: arch string, accuracy, its rank among all 15,625 cells, the table's best."""
    if not isinstance(evaluator, TableEvaluator201) or best_trial["result"] is None:
        return None
    table, acc = evaluator.table, best_trial["result"].objectives.get("accuracy")
    if acc is None:
        return None
    best = int(np.argmax(table.test_accuracy))
    index = table.index(spec.validate(best_trial["genome"]))
    out = {"best_arch": spec.validate(best_trial["genome"]), "best_index": index, "best_accuracy": float(acc),
           "rank_in_table": int(table.ranks[index]), "cells_in_table": len(table),
           "table_best_accuracy": float(table.test_accuracy[best]), "table_best_arch": table.arch(best)}
    if table.dataset != "cifar10":  # the default's summary stays as it always was
        out["dataset"] = table.dataset
    return out


def query(arch: str | None = None, index: int | None = None, dataset: str = "cifar10", best: bool = False) -> dict:
    """A cell's record by arch string, official index or as the data set's best: accuracy, rank, key and its
    equivalent cells (accuracy and rank on `dataset`)."""
    table = load_table(dataset=check_dataset(dataset))
    if best:
        index = int(np.argmax(table.test_accuracy))
    if index is not None:
        index = table.check_index(index)
        arch = table.arch(index)
    else:
        arch = spec.validate(arch)
        index = table.index(arch)
    key = spec.unique_key(arch)
    same = [i for i, k in enumerate(load_table().keys) if k == key]  # the keys are the same for every data set
    return {"index": index, "arch": arch, "dataset": dataset, "test_accuracy": float(table.test_accuracy[index]),
            "rank_by_test_accuracy": int(table.ranks[index]), "cells": len(table), "key": key,
            "equivalent_cells": len(same),
            "equivalent_accuracy": {"min": float(table.test_accuracy[same].min()),
                                    "max": float(table.test_accuracy[same].max())},
            "expression": spec.expression(spec.parse(arch))}
