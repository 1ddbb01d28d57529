"""NAS-Bench-201 cells (Dong & Yang, ICLR 2020): the official arch strings and the functional key.

A cell has 4 nodes; node j (1..3) sums an operation applied to each earlier node, and node 3 is the
output. The 6 edges carry one of 5 operations each (5^6 = 15,625 cells). The official string lists
them node by node: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (the edges into node 1, then 2, then 3).

Cells that compute the same function share a key (`unique_key`): an edge with `none` contributes
nothing, a node fed only by nothing is nothing, `skip_connect` passes its input on unchanged (so a sum
it carries joins the next sum), and the terms of a sum are unordered. Two cells whose output
expressions are equal then have the same key: the 15,625 cells fall into 4,930 classes.

The figure usually quoted, 6,466 unique cells, comes from the benchmark authors' coarser rule
(`authors_unique_string`): a sum carried by `skip_connect` stays one term, and zero terms stay in the
sum. It keeps apart cells that compute the same function, so searchlab keys by the finer rule and
reproduces the published figure with the authors' one (tests/search_spaces/test_nasbench201.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

from searchlab.errors import InvalidArchitecture

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to, from) of the 6 edges in the order the official string lists them
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def parse(text: Any) -> tuple[str, ...]:
    """The 6 edge operations of an official arch string, checked; InvalidArchitecture says what is wrong."""
    if not isinstance(text, str):
        raise InvalidArchitecture(f"a NAS-Bench-201 cell is an arch string like {EXAMPLE}, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise InvalidArchitecture(f"arch string {text!r} has {len(nodes)} node groups separated by '+', a "
                                  f"NAS-Bench-201 cell has 3, e.g. {EXAMPLE}")
    ops = []
    for j, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise InvalidArchitecture(f"node group {group!r} of {text!r} must start and end with '|'")
        edges = group[1:-1].split("|")
        if len(edges) != j:
            raise InvalidArchitecture(f"node {j} of {text!r} has {len(edges)} inputs, it must have {j} (from nodes "
                                      f"0..{j - 1})")
        for i, edge in enumerate(edges):
            op, _, source = edge.partition("~")
            if op not in OPS:
                raise InvalidArchitecture(f"unknown operation {op!r} in {text!r}; NAS-Bench-201 has "
                                          f"{', '.join(OPS)}")
            if source != str(i):
                raise InvalidArchitecture(f"edge {edge!r} into node {j} of {text!r} must read from node {i} "
                                          f"(written {op}~{i})")
            ops.append(op)
    return tuple(ops)


def format_arch(ops: tuple[str, ...] | list[str]) -> str:
    """The official arch string of 6 edge operations (in `EDGES` order)."""
    ops = list(ops)
    if len(ops) != 6 or any(op not in OPS for op in ops):
        raise InvalidArchitecture(f"a NAS-Bench-201 cell has 6 edge operations from {', '.join(OPS)}, got {ops}")
    groups, k = [], 0
    for j in (1, 2, 3):
        groups.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(groups)


def validate(genome: Any) -> str:
    """The canonical arch string of a genome given as an arch string or a list of 6 operation names."""
    if isinstance(genome, (list, tuple)):
        return format_arch(genome)
    return format_arch(parse(genome))


def expression(ops: tuple[str, ...] | list[str]) -> str:
    """The cell's output as a canonical expression of the input `x` ('0' when the output is always zero)."""
    value = {0: "x"}
    for j in (1, 2, 3):
        terms = []
        for (to, source), op in zip(EDGES, ops):
            if to != j or op == "none" or value[source] == "0":
                continue
            terms.append(value[source] if op == "skip_connect" else f"{op}({value[source]})")
        # a sum of sums is one sum: skip_connect can lift a node's terms into the next node
        flat = sorted(t for term in terms for t in _summands(term))
        value[j] = "+".join(flat) if flat else "0"
    return value[3]


def _summands(term: str) -> list[str]:
    """The top-level terms of a sum (split at '+' outside parentheses)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(term):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "+" and depth == 0:
            out.append(term[start:i])
            start = i + 1
    out.append(term[start:])
    return out


def unique_key(genome: Any) -> str:
    """32 hex digits shared by exactly the cells that compute the same function (see the module docstring)."""
    return hashlib.md5(expression(parse(validate(genome))).encode()).hexdigest()


def authors_unique_string(ops: tuple[str, ...] | list[str]) -> str:
    """The benchmark authors' coarser identity of a cell (6,466 classes): kept for checking that figure."""
    value = {0: "x"}
    for j in (1, 2, 3):
        terms = []
        for (to, source), op in zip(EDGES, ops):
            if to != j:
                continue
            if op == "none" or value[source] == "#":
                terms.append("#")
            else:
                terms.append(value[source] if op == "skip_connect" else f"({value[source]})@{op}")
        value[j] = "+".join(sorted(terms))
    return value[3]

