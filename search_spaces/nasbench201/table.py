"""The NAS-Bench-201 table, bundled: all 15,625 cells in official index order, four labels each.

`nasbench201_cifar10.npz` beside this file holds `ops` (uint8 [15625, 6], indices into `spec.OPS` in
`spec.EDGES` order) and one float32 [15625] array of fractions per data set (`DATASETS`): test accuracy
after 200 epochs, mean over the benchmark's seeds, on CIFAR-10 (`test_accuracy`, the default), CIFAR-100,
ImageNet16-120, and CIFAR-10 again for networks trained on the 25,000-image cifar10-valid split (a second,
independently trained label). It was built with `build(...)` from the release's files; SOURCE.md says
from where.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlab.search_spaces.nasbench201 import spec
from searchlab.errors import ConfigError

BUNDLED = Path(__file__).resolve().parent / "nasbench201_cifar10.npz"
N_CELLS = 15625
# data set name -> (npz key, what the accuracy is)
DATASETS = {
    "cifar10": ("test_accuracy", "CIFAR-10, 200 epochs, mean over seeds"),
    "cifar100": ("cifar100_test_accuracy", "CIFAR-100, 200 epochs, mean over seeds"),
    "imagenet16-120": ("imagenet16_120_test_accuracy", "ImageNet16-120, 200 epochs, mean over seeds"),
    "cifar10-valid": ("cifar10_valid_test_accuracy",
                      "CIFAR-10 test set, networks trained on the 25,000-image cifar10-valid split, mean over seeds"),
}


@dataclass(frozen=True)
class Table:
    """Arrays over the cells in official index order, and lookups by arch string."""

    ops: np.ndarray            # uint8 [N, 6]
    test_accuracy: np.ndarray  # float32 [N], fraction, on `dataset`
    dataset: str = "cifar10"

    @property
    def label(self) -> str:
        """What `test_accuracy` is, in words."""
        return DATASETS[self.dataset][1]

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


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ConfigError(f"unknown NAS-Bench-201 data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    return dataset


@functools.cache
def load_table(path: str | None = None, dataset: str = "cifar10") -> Table:
    """The bundled table (or another npz of the same layout) with `dataset`'s accuracy, read once per process."""
    key = DATASETS[check_dataset(dataset)][0]
    with np.load(path or BUNDLED) as data:
        if key not in data:
            raise ConfigError(f"{path} has no {dataset} accuracies; rebuild it with table.build(...) or use cifar10")
        return Table(ops=data["ops"].astype(np.uint8), test_accuracy=data[key].astype(np.float32), dataset=dataset)


def _csv_column(path: str | Path, arch_field: str, field: str, archs: list[str]) -> np.ndarray:
    """One column of a release CSV (percent) -> fractions in the order of `archs`, joined on the arch string."""
    with open(path, newline="") as f:
        rows = {r[arch_field]: float(r[field]) for r in csv.DictReader(f)}
    missing = [a for a in archs if a not in rows]
    if len(rows) != N_CELLS or missing:
        raise ConfigError(f"{path} holds {len(rows)} cells ({len(missing)} of the release's missing); "
                          f"NAS-Bench-201 has {N_CELLS}")
    return (np.array([rows[a] for a in archs]) / 100.0).astype(np.float32)


def build(json_path: str | Path, npz_path: str | Path, nats_csv: str | Path, valid_csv: str | Path) -> Table:
    """Convert the release's `{"archs": [...], "cifar10_test_accuracy": [...]}` (percent), the NATS-Bench
    three-data-set CSV (its CIFAR-100 and ImageNet16-120 columns) and the cifar10-valid CSV into the npz."""
    data = json.loads(Path(json_path).read_text())
    archs, acc = data["archs"], data["cifar10_test_accuracy"]
    if len(archs) != N_CELLS or len(acc) != N_CELLS:
        raise ConfigError(f"{json_path} holds {len(archs)} cells, NAS-Bench-201 has {N_CELLS}")
    ops = np.array([[spec.OPS.index(op) for op in spec.parse(a)] for a in archs], dtype=np.uint8)
    columns = {"test_accuracy": (np.asarray(acc, dtype=np.float64) / 100.0).astype(np.float32),
               "cifar100_test_accuracy": _csv_column(nats_csv, "ArchitectureString",
                                                     "CIFAR100TestAccuracy200Epochs", archs),
               "imagenet16_120_test_accuracy": _csv_column(nats_csv, "ArchitectureString",
                                                           "ImageNetTestAccuracy200Epochs", archs),
               "cifar10_valid_test_accuracy": _csv_column(valid_csv, "architecture", "accuracy", archs)}
    np.savez_compressed(npz_path, ops=ops, **columns)
    return Table(ops, columns["test_accuracy"])
