"""The NAS-Bench-201 CIFAR-10 table, bundled: all 15,625 cells in official index order.

`nasbench201_cifar10.npz` beside this file holds `ops` (uint8 [15625, 6], indices into `spec.OPS` in
`spec.EDGES` order) and `test_accuracy` (float32 [15625], a fraction: CIFAR-10 test accuracy after 200
epochs, mean over the benchmark's seeds). It was built from the release's arch strings and accuracies
with `build(json_path, npz_path)`; SOURCE.md says from where.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlab.search_spaces.nasbench201 import spec
from searchlab.errors import ConfigError

BUNDLED = Path(__file__).resolve().parent / "nasbench201_cifar10.npz"
N_CELLS = 15625


@dataclass(frozen=True)
class Table:
    """Arrays over the cells in official index order, and lookups by arch string."""

    ops: np.ndarray            # uint8 [N, 6]
    test_accuracy: np.ndarray  # float32 [N], fraction

    def __len__(self) -> int:
        return len(self.ops)

    @functools.cached_property
    def _index_of_code(self) -> np.ndarray:
        """Official index of each base-5 code of the 6 operations."""
        out = np.full(5 ** 6, -1, dtype=np.int64)
        out[self.codes] = np.arange(len(self.ops))
        return out

    @functools.cached_property
    def codes(self) -> np.ndarray:
        return (self.ops.astype(np.int64) * (5 ** np.arange(6)[::-1])).sum(1)

    @functools.cached_property
    def ranks(self) -> np.ndarray:
        """1-based rank of each cell by test accuracy (1 = best; ties share the better rank)."""
        order = np.sort(-self.test_accuracy)
        return np.searchsorted(order, -self.test_accuracy, side="left") + 1

    @functools.cached_property
    def keys(self) -> list[str]:
        return [spec.unique_key(self.arch(i)) for i in range(len(self))]

    def arch(self, index: int) -> str:
        return spec.format_arch([spec.OPS[k] for k in self.ops[int(index)]])

    def index(self, arch: str) -> int:
        code = sum(spec.OPS.index(op) * 5 ** (5 - e) for e, op in enumerate(spec.parse(arch)))
        return int(self._index_of_code[code])

    def check_index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise ConfigError(f"index {index} is out of range: NAS-Bench-201 cells are numbered 0 to {len(self) - 1}")
        return index


@functools.cache
def load_table(path: str | None = None) -> Table:
    """The bundled table (or another npz of the same layout), read once per process."""
    with np.load(path or BUNDLED) as data:
        return Table(ops=data["ops"].astype(np.uint8), test_accuracy=data["test_accuracy"].astype(np.float32))


def build(json_path: str | Path, npz_path: str | Path) -> Table:
    """Convert the release's `{"archs": [...], "cifar10_test_accuracy": [...]}` (percent) into the npz."""
    data = json.loads(Path(json_path).read_text())
    archs, acc = data["archs"], data["cifar10_test_accuracy"]
    if len(archs) != N_CELLS or len(acc) != N_CELLS:
        raise ConfigError(f"{json_path} holds {len(archs)} cells, NAS-Bench-201 has {N_CELLS}")
    ops = np.array([[spec.OPS.index(op) for op in spec.parse(a)] for a in archs], dtype=np.uint8)
    accuracy = np.asarray(acc, dtype=np.float64) / 100.0
    np.savez_compressed(npz_path, ops=ops, test_accuracy=accuracy.astype(np.float32))
    return Table(ops, accuracy.astype(np.float32))
