"""A table as the predictors see it: every cell as `Cells` plus its labels (NAS-Bench-101 here; other
spaces provide theirs through their encoding, `predictors.features.ENCODINGS`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from searchlab.predictors.features import MAX_VERTICES, OP_CODES, Cells, table_ops_to_codes

TARGETS = ("test_accuracy", "flops", "params")


@dataclass(frozen=True)
class PredictorTable:
    cells: Cells  # all cells, table_index = row
    targets: dict[str, np.ndarray]
    table: Any  # the space's Table (NAS-Bench-101: hashes, index_of, genome)
    space: str = "nasbench101"

    def __len__(self) -> int:
        return len(self.cells)

    def target(self, name: str) -> np.ndarray:
        from searchlab.errors import ConfigError
        if name not in self.targets:
            raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(self.targets)}")
        values = self.targets[name]
        if np.isnan(values).all():
            known = [n for n, v in self.targets.items() if not np.isnan(v).all()]
            raise ConfigError(f"this table has no {name} values; choose --target {' or '.join(known)}")
        return values


def load_predictor_table(db: str | None = None, space: str = "nasbench101",
                         dataset: str | None = None) -> PredictorTable:
    """All cells of a space's table as the predictors see them (NAS-Bench-101 by default). `dataset` picks
    whose accuracy `test_accuracy` is in a table of several (NAS-Bench-201; None: the space's default)."""
    from searchlab.errors import ConfigError
    if space == "nasbench101":
        if dataset not in (None, "cifar10"):
            raise ConfigError(f"NAS-Bench-101 has CIFAR-10 labels only, not {dataset}; --dataset is for "
                              "--space nasbench201")
        return predictor_table(db)
    from searchlab.predictors.features import encoding
    impl = encoding(space)._impl()
    return impl.predictor_table(db) if dataset is None else impl.predictor_table(db, dataset)


@lru_cache(maxsize=2)
def predictor_table(db: str | None = None) -> PredictorTable:
    """All cells of the NAS-Bench-101 table (bundled, or an imported database) in the padded layout."""
    from searchlab.search_spaces.nasbench101.table import load_table

    table = load_table(db or None)
    # Row indices let encodings come from the on-disk cache of the bundled table.
    cells = Cells(table.padded_matrices(), table_ops_to_codes(table.padded_ops()),
                  None if db else np.arange(len(table)))
    return PredictorTable(cells, {name: getattr(table, name).astype(np.float64) for name in TARGETS}, table)


def cells_from_genomes(genomes: list) -> Cells:
    """NAS-Bench-101 genomes ({"matrix", "ops"}) -> padded `Cells` (validated and pruned first)."""
    from searchlab.search_spaces.nasbench101 import spec as nb_spec

    adj = np.zeros((len(genomes), MAX_VERTICES, MAX_VERTICES), np.uint8)
    ops = np.zeros((len(genomes), MAX_VERTICES), np.int8)
    for i, genome in enumerate(genomes):
        g = nb_spec.validate(genome)
        m, n = np.asarray(g["matrix"], dtype=np.uint8), len(g["ops"])
        pos = list(range(n - 1)) + [MAX_VERTICES - 1]  # the output moves to vertex 6
        adj[i][np.ix_(pos, pos)] = m
        ops[i, pos] = [OP_CODES[o] for o in g["ops"]]
    return Cells(adj, ops)


@lru_cache(maxsize=2)
def table_vertex_costs(db: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex FLOPs/params of every table cell, from the on-disk cache after the first build."""
    from searchlab.predictors.features import cached_vertex_costs
    return cached_vertex_costs(load_predictor_table(db).cells)


def costs_of(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex costs of a batch in its space's cost model (`Encoding.costs`)."""
    if cells.space != "nasbench101":
        from searchlab.predictors.features import encoding
        return encoding(cells.space)._impl().costs(cells)
    return costs(cells)


def costs(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """NAS-Bench-101 per-vertex costs: from the table cache for large batches of table rows, else computed."""
    from searchlab.predictors.features import vertex_costs
    # Large batches of table rows read (or first build) the on-disk cache; a few hundred cells are
    # cheaper to compute than the cache is to build.
    if cells.table_index is not None and (len(cells) > 20000 or table_vertex_costs.cache_info().currsize):
        flops, params = table_vertex_costs()
        if len(cells) == len(flops) and np.array_equal(cells.table_index, np.arange(len(flops))):
            return flops, params  # the whole table in order: no copy
        return flops[cells.table_index], params[cells.table_index]
    return vertex_costs(cells.adjacency, cells.ops)
