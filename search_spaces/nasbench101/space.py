"""The NAS-Bench-101 search space: sampling, the standard mutation, identity by official hash.

`sample` is uniform over the 423,624 unique cells (a random row of the table), `mutate` is the
mutation of the NAS-Bench-101 paper's evolution baselines (flip each upper-triangular edge with
probability 1/#possible edges, change each interior op with probability 1/#ops, retry until the
cell is valid and differs from its parent), `key` is the official module hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.errors import ConfigError
from searchlab.options import opt


@dataclass(frozen=True)
class NB101SpaceConfig:
    """NAS-Bench-101 cell space (network shape used by describe and build_network)"""

    stem_channels: int = opt(128, help="output channels of the stem convolution (the benchmark uses 128)")
    num_stacks: int = opt(3, help="stacks of cells, channels doubling after each (the benchmark uses 3)")
    modules_per_stack: int = opt(3, help="cells per stack (the benchmark uses 3)")

    def __post_init__(self) -> None:
        for name in ("stem_channels", "num_stacks", "modules_per_stack"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


class NasBench101Space:
    """Cells as {"matrix", "ops"}; key = official hash; sample/mutate as in the benchmark's paper."""

    name = "nasbench101"

    def __init__(self, config: NB101SpaceConfig | None = None, table: Any = None) -> None:
        self.config = config or NB101SpaceConfig()
        self._table = table

    @property
    def table(self):
        if self._table is None:
            from searchlab.search_spaces.nasbench101.table import load_table
            self._table = load_table()
        return self._table

    def sample(self, rng: np.random.Generator) -> dict:
        """A uniformly random unique cell (a random row of the table)."""
        return self.table.genome(int(rng.integers(len(self.table))))

    def mutate(self, genome: Any, rng: np.random.Generator) -> dict:
        """Flip each edge w.p. 1/#possible edges, change each interior op w.p. 1/#interior ops
        (one of each in expectation, as the benchmark's evolution baseline); retry until valid and new.

        A pruned cell is first padded back to 7 vertices (unconnected vertices with random ops
        inserted before the output) so that mutations can grow it again.
        """
        g = self.validate(genome)
        parent_key = self.key(g)
        n, full = len(g["ops"]), nb_spec.MAX_VERTICES
        matrix = np.zeros((full, full), dtype=np.int64)
        matrix[:n - 1, :n - 1] = np.asarray(g["matrix"])[:n - 1, :n - 1]
        matrix[:n - 1, full - 1] = np.asarray(g["matrix"])[:n - 1, n - 1]
        ops = g["ops"][:-1] + [nb_spec.OPS[int(i)] for i in rng.integers(len(nb_spec.OPS), size=full - n)] \
            + [nb_spec.OUTPUT]
        iu = np.triu_indices(full, 1)
        edge_p, op_p = 1.0 / len(iu[0]), 1.0 / (full - 2)
        for _ in range(10000):
            child = matrix.copy()
            flips = rng.random(len(iu[0])) < edge_p
            child[iu[0][flips], iu[1][flips]] ^= 1
            child_ops = list(ops)
            for v in range(1, full - 1):
                if rng.random() < op_p:
                    choices = [o for o in nb_spec.OPS if o != ops[v]]
                    child_ops[v] = choices[int(rng.integers(len(choices)))]
            candidate = {"matrix": child.tolist(), "ops": child_ops}
            if nb_spec.is_valid(candidate):
                candidate = nb_spec.validate(candidate)
                if self.key(candidate) != parent_key:
                    return candidate
        raise RuntimeError("no valid mutation found in 10,000 tries")  # pragma: no cover

    def validate(self, genome: Any) -> dict:
        return nb_spec.validate(genome)

    def key(self, genome: Any) -> str:
        return nb_spec.spec_hash(genome)

    def describe(self, genome: Any) -> dict:
        """Vertices, edges, params and FLOPs (multiply-accumulates) of the full network."""
        from searchlab.search_spaces.nasbench101.network import network_stats

        g = self.validate(genome)
        stats = network_stats(g, stem_channels=self.config.stem_channels, num_stacks=self.config.num_stacks,
                              modules_per_stack=self.config.modules_per_stack)
        return {"hash": self.key(g), "vertices": len(g["ops"]), "edges": int(np.sum(g["matrix"])),
                "ops": g["ops"][1:-1], **stats}

    def build_network(self, genome: Any, num_classes: int = 10, in_channels: int = 3, **_: Any):
        """The trainable network of a cell with this space's stem/stack/module sizes."""
        from searchlab.search_spaces.nasbench101.network import build_network

        return build_network(genome, num_classes=num_classes, stem_channels=self.config.stem_channels,
                             num_stacks=self.config.num_stacks, modules_per_stack=self.config.modules_per_stack,
                             in_channels=in_channels)
