"""NAS-Bench-101 cell specs: validation, pruning and the official module hash.

A genome is `{"matrix": [[0/1, ...], ...], "ops": ["input", ..., "output"]}`. The rules are the
official ones (Ying et al., 2019): a square upper-triangular 0/1 matrix of at most 7 vertices, the
first op `input`, the last `output`, the ones between among the three operations; vertices that are
not on an input -> output path are pruned (as the official `ModelSpec` does) and the pruned cell may
have at most 9 edges. `validate` returns the pruned (canonical) form or raises `InvalidArchitecture`
naming the rule broken; `spec_hash` is the official isomorphism-invariant module hash.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from searchlab.errors import InvalidArchitecture

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
"""The three interior operations, in the official order (their label codes are 0, 1, 2)."""
OP_CODE = {INPUT: -1, CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2, OUTPUT: -2}
CODE_OP = {v: k for k, v in OP_CODE.items()}
MAX_VERTICES = 7
MAX_EDGES = 9


def _as_matrix(matrix: Any) -> np.ndarray:
    try:
        m = np.asarray(matrix)
    except Exception:  # noqa: BLE001 - ragged nested lists
        m = None
    if m is None or m.dtype == object or m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise InvalidArchitecture("matrix must be a square list of lists of 0/1 (e.g. [[0,1],[0,0]])")
    if m.dtype == bool:
        m = m.astype(np.int64)
    if not np.issubdtype(m.dtype, np.number) or not np.isin(m, (0, 1)).all():
        raise InvalidArchitecture("matrix entries must be 0 or 1")
    return m.astype(np.int64)


def split(genome: Any) -> tuple[np.ndarray, list[str]]:
    """Check the shape rules of a raw genome (before pruning) and return (matrix, ops)."""
    if not isinstance(genome, dict) or "matrix" not in genome or "ops" not in genome:
        raise InvalidArchitecture('a NAS-Bench-101 cell is a JSON object {"matrix": [[...]], "ops": [...]}')
    m = _as_matrix(genome["matrix"])
    ops = genome["ops"]
    if not isinstance(ops, (list, tuple)) or not all(isinstance(o, str) for o in ops):
        raise InvalidArchitecture("ops must be a list of operation names")
    ops = list(ops)
    n = m.shape[0]
    if len(ops) != n:
        raise InvalidArchitecture(f"ops has {len(ops)} entries but the matrix has {n} vertices; "
                                  "give one op per vertex")
    if n > MAX_VERTICES:
        raise InvalidArchitecture(f"the cell has {n} vertices; at most {MAX_VERTICES} are allowed")
    if np.tril(m).any():
        raise InvalidArchitecture("matrix must be upper triangular (no self-loops, edges only go from "
                                  "a lower to a higher vertex index)")
    if n < 2:
        raise InvalidArchitecture("a cell needs at least 2 vertices (input and output)")
    if ops[0] != INPUT:
        raise InvalidArchitecture(f"the first op must be {INPUT!r}")
    if ops[-1] != OUTPUT:
        raise InvalidArchitecture(f"the last op must be {OUTPUT!r}")
    for op in ops[1:-1]:
        if op not in OPS:
            raise InvalidArchitecture(f"unknown op {op!r} between input and output; use one of "
                                      f"{', '.join(OPS)}")
    return m, ops


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]]:
    """Remove vertices not on an input -> output path, as the official ModelSpec does."""
    n = matrix.shape[0]
    from_input = np.zeros(n, bool)
    from_input[0] = True
    for v in range(1, n):
        from_input[v] = bool((matrix[:v, v] > 0)[from_input[:v]].any())
    to_output = np.zeros(n, bool)
    to_output[n - 1] = True
    for v in range(n - 2, -1, -1):
        to_output[v] = bool((matrix[v, v + 1:] > 0)[to_output[v + 1:]].any())
    keep = from_input & to_output
    if not keep[0] or not keep[n - 1]:
        raise InvalidArchitecture("the output is not reachable from the input; connect them by a path of edges")
    idx = np.flatnonzero(keep)
    return matrix[np.ix_(idx, idx)], [ops[i] for i in idx]


def validate(genome: Any) -> dict:
    """The pruned, canonical genome, or InvalidArchitecture naming the broken rule."""
    m, ops = split(genome)
    m, ops = prune(m, ops)
    edges = int(m.sum())
    if edges > MAX_EDGES:
        raise InvalidArchitecture(f"the cell has {edges} edges; at most {MAX_EDGES} are allowed")
    return {"matrix": m.astype(int).tolist(), "ops": ops}


def is_valid(genome: Any) -> bool:
    try:
        validate(genome)
    except InvalidArchitecture:
        return False
    return True


def labels(ops: list[str]) -> list[int]:
    """Op names -> the integer labels the official hash uses (-1 input, 0/1/2, -2 output)."""
    return [OP_CODE[o] for o in ops]


@lru_cache(maxsize=1)
def official_hash_module():
    """`nasbench_pytorch.model.graph_util.hash_module`, loaded without importing torch.

    graph_util itself needs only hashlib and numpy, but importing it through its package runs
    `nasbench_pytorch.model.__init__`, which imports torch (seconds). Loading the file on its own
    keeps a cold `query` fast; where the package is already imported, that module is used.
    """
    loaded = sys.modules.get("nasbench_pytorch.model.graph_util")
    if loaded is not None:
        return loaded.hash_module
    found = importlib.util.find_spec("nasbench_pytorch")
    if found is None or found.origin is None:
        raise ImportError("nasbench_pytorch is not installed; run `pip install nasbench-pytorch`")
    path = Path(found.origin).parent / "model" / "graph_util.py"
    module_spec = importlib.util.spec_from_file_location("_searchlab_nb101_graph_util", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.hash_module


def spec_hash(genome: Any) -> str:
    """The official NAS-Bench-101 module hash (32 hex chars) of the pruned cell (`hash_module`).

    For many cells at once, `hashing.hash_graphs` computes the same hashes vectorised.
    """
    g = validate(genome)
    return official_hash_module()(np.asarray(g["matrix"], dtype=np.int64), labels(g["ops"]))


def from_arrays(matrix: np.ndarray, op_codes: Any) -> dict:
    """A genome from an n x n matrix and integer op codes (-1, 0, 1, 2, -2; -3 padding is dropped)."""
    codes = [int(c) for c in op_codes if int(c) != -3]
    n = len(codes)
    return {"matrix": np.asarray(matrix)[:n, :n].astype(int).tolist(), "ops": [CODE_OP[c] for c in codes]}
