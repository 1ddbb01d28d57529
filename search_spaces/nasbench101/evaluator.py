"""The `table` evaluator: score a NAS-Bench-101 cell by looking it up instead of training it.

Each evaluation is one query of the benchmark: one training run of the cell (chosen with the
trial's seed among the repeats the table holds), its accuracy as the objective, FLOPs and/or
parameters as secondary objectives when the table knows them, and as cost the epochs and the
training time the real run took (`simulated_seconds`), so `--max-cost` budgets simulated time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.search_spaces.nasbench101.table import Table, load_table
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt
from searchlab.protocols import Context, Result


@dataclass(frozen=True)
class TableEvaluatorConfig:
    """NAS-Bench-101 table evaluator (look cells up in the benchmark)"""

    db: str = opt("", help="table database built by `searchlab nasbench101 import` (default: the bundled table)")
    table_epochs: int = opt(108, help="training epochs of the looked-up runs (the bundled table has 108 only)",
                            choices=[4, 12, 36, 108])
    stop_halfway: bool = opt(False, help="use the halfway point of each run (costs half the epochs)")
    metric: str = opt("test", help="which accuracy to maximise (the bundled table has test only)",
                      choices=["test", "validation"])


class TableEvaluator:
    """Looks cells up in a NAS-Bench-101 table; objectives accuracy (+ flops/params when known)."""

    def __init__(self, config: TableEvaluatorConfig | None = None, table: Table | None = None) -> None:
        self.config = config or TableEvaluatorConfig()
        self.table = table if table is not None else load_table(self.config.db or None)
        self.objectives: dict[str, str] = {"accuracy": "max"}
        if not np.isnan(self.table.flops).all():
            self.objectives["flops"] = "min"
        if not np.isnan(self.table.params).all():
            self.objectives["params"] = "min"

    def evaluate(self, genome: Any, *, seed: int, device: str = "cpu") -> Result:
        try:
            h = nb_spec.spec_hash(genome)
            fixed, computed = self.table.get_metrics_from_hash(h)
        except InvalidArchitecture as exc:
            return Result.failed(str(exc))
        epochs = self.config.table_epochs
        runs = computed.get(epochs)
        if not runs:
            raise ConfigError(f"the table has no runs at {epochs} epochs; use --table-epochs "
                              f"{' or '.join(map(str, sorted(computed)))}")
        run = runs[int(np.random.default_rng(seed).integers(len(runs)))]
        pre = "halfway_" if self.config.stop_halfway else "final_"
        acc = run[pre + self.config.metric + "_accuracy"]
        if acc is None:
            raise ConfigError(f"this table has no {self.config.metric} accuracy; use --metric test")
        objectives = {"accuracy": float(acc)}
        if "flops" in self.objectives:
            objectives["flops"] = float(fixed["flops"]) if fixed["flops"] is not None else math.nan
        if "params" in self.objectives:
            objectives["params"] = float(fixed["trainable_parameters"]) \
                if fixed["trainable_parameters"] is not None else math.nan
        cost = {"epochs": epochs / 2 if self.config.stop_halfway else float(epochs)}
        if run[pre + "training_time"] is not None:
            cost["simulated_seconds"] = float(run[pre + "training_time"])
        return Result("ok", objectives, cost)


def finalize(space: Any, evaluator: TableEvaluator, best_trial: dict, ctx: Context) -> dict | None:
    """Summary of the best cell found: hash, accuracy, its rank among all cells, the table's best."""
    if not isinstance(evaluator, TableEvaluator):
        return None
    table = evaluator.table
    result = best_trial["result"]
    acc = result.objectives.get("accuracy") if result is not None else None
    if acc is None:
        return None
    best_row = int(np.nanargmax(table.test_accuracy))
    summary = {"best_hash": best_trial["key"], "best_accuracy": float(acc),
               "rank_in_table": table.rank_of(acc) if evaluator.config.metric == "test" else None,
               "cells_in_table": len(table), "table_best_accuracy": float(table.test_accuracy[best_row]),
               "table_best_hash": str(table.hashes[best_row])}
    return summary
