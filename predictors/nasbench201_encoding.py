"""NAS-Bench-201 cells as the predictors see them: the ops-as-nodes DAG (TNASP, PINAT, NASLib).

Each of the 6 edges becomes a vertex carrying its operation; vertex 0 is the cell input, 1..6 the
edges in the official string's order (`spec.EDGES`), 7 the output. An edge vertex i->j feeds every
edge vertex leaving node j (or the output when j is node 3) and is fed by every edge vertex entering
node i (or the input when i is node 0). The adjacency is the same for all cells; only the ops differ.

Per-vertex costs follow the NAS-Bench-201 network: a 3->16 stem, then 3 stages of 5 cells (16, 32
and 64 channels at 32x32, 16x16 and 8x8) joined by residual reduction blocks. A vertex's cost in a
stage is its op in all 5 cells of the stage: ReLU-conv-BN for nor_conv_kxk (k*k*C*C MACs per position,
k*k*C*C + 2C parameters), nothing for none, skip_connect and avg_pool_3x3 (pooling counted free, as
the NAS-Bench-101 cost model counts max pooling). So the ReNAS tensor has 1 + 2 * 3 = 7 channels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.predictors.features import Cells
from searchlab.search_spaces.nasbench201 import spec

SPACE = "nasbench201"
N_VERTICES = 8
# op codes (0 marks padding, which this space never needs)
PAD, INPUT, OUTPUT = 0, 1, 2
OP_CODES = {op: 3 + i for i, op in enumerate(spec.OPS)}  # none 3, skip 4, conv1x1 5, conv3x3 6, avgpool 7
# (channels, spatial positions, cells) of the 3 stages
STAGES = ((16, 32 * 32, 5), (32, 16 * 16, 5), (64, 8 * 8, 5))


def _adjacency() -> np.ndarray:
    adj = np.zeros((N_VERTICES, N_VERTICES), np.uint8)
    for a, (to_a, from_a) in enumerate(spec.EDGES, start=1):
        if from_a == 0:
            adj[0, a] = 1
        if to_a == 3:
            adj[a, N_VERTICES - 1] = 1
        for b, (_, from_b) in enumerate(spec.EDGES, start=1):
            if from_b == to_a:
                adj[a, b] = 1
    return adj


ADJACENCY = _adjacency()


def cells_from_ops(op_indices: np.ndarray, table_index: np.ndarray | None = None) -> Cells:
    """(N, 6) indices into `spec.OPS` -> `Cells` (N, 8, 8) in the ops-as-nodes layout."""
    op_indices = np.asarray(op_indices, dtype=np.int64).reshape(-1, 6)
    n = len(op_indices)
    ops = np.empty((n, N_VERTICES), np.int8)
    ops[:, 0], ops[:, -1] = INPUT, OUTPUT
    ops[:, 1:-1] = op_indices + 3
    return Cells(np.broadcast_to(ADJACENCY, (n, N_VERTICES, N_VERTICES)).copy(), ops, table_index, SPACE)


def cells_from_archs(archs: list[str]) -> Cells:
    """Official arch strings -> `Cells` (InvalidArchitecture says what is wrong with a bad one)."""
    return cells_from_ops(np.array([[spec.OPS.index(op) for op in spec.parse(a)] for a in archs]))


def costs(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex multiply-accumulates and parameters in each of the 3 stages: two (N, 3, 8) float32."""
    if cells.adjacency.shape[1:] != (N_VERTICES, N_VERTICES):
        raise ConfigError(f"these cells have {cells.adjacency.shape[1]} vertices, NAS-Bench-201 cells have "
                          f"{N_VERTICES}")
    ops = cells.ops.astype(np.int64)
    kernel = np.select([ops == OP_CODES["nor_conv_3x3"], ops == OP_CODES["nor_conv_1x1"]], [9, 1], 0).astype(np.float64)
    conv = (kernel > 0).astype(np.float64)
    flops = np.stack([kernel * c * c * hw * k for c, hw, k in STAGES], axis=1)
    params = np.stack([(kernel * c * c + 2.0 * c * conv) * k for c, _, k in STAGES], axis=1)
    return flops.astype(np.float32), params.astype(np.float32)


@lru_cache(maxsize=8)
def predictor_table(db: str | None = None, dataset: str = "cifar10"):
    """Every NAS-Bench-201 cell (official index order); `test_accuracy` is its accuracy on `dataset`
    (`search_spaces.nasbench201.table.DATASETS`; CIFAR-10 by default)."""
    from searchlab.predictors.table import PredictorTable
    from searchlab.search_spaces.nasbench201.table import load_table

    table = load_table(db or None, dataset=dataset)
    cells = cells_from_ops(table.ops, np.arange(len(table)))
    nan = np.full(len(table), np.nan)
    return PredictorTable(cells, {"test_accuracy": table.test_accuracy.astype(np.float64), "flops": nan,
                                  "params": nan}, table, SPACE)


def rows_of(table, items: list, where: str = "") -> list[int]:
    """Arch strings (or lists of 6 op names) or official indices -> table rows; bad ones raise one line."""
    rows = []
    for i, item in enumerate(items):
        prefix = f"{where} item {i + 1}: " if where else ""
        try:
            if isinstance(item, bool):
                raise InvalidArchitecture(f"a NAS-Bench-201 cell is an arch string like {spec.EXAMPLE} or an index")
            if isinstance(item, int):
                rows.append(table.table.check_index(item))
            else:
                rows.append(table.table.index(spec.validate(item)))
        except (InvalidArchitecture, ConfigError) as exc:
            raise type(exc)(f"{prefix}{exc}") from None
    return rows


def describe(table, row: int) -> dict:
    return {"arch": table.table.arch(row), "index": int(row)}
