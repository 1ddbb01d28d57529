"""The common predictor API: fit on labelled (and unlabelled) cells, predict, save and load.

A predictor directory holds `predictor.json` (kind, config, seed, metadata) and
`weights.safetensors` (every tensor needed to predict). Nothing is ever unpickled.
"""

from __future__ import annotations

from contextlib import contextmanager

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from searchlab import io
from searchlab.predictors.features import Cells
from searchlab.errors import ConfigError
from searchlab.io import resolve_device

FORMAT = "searchlab-predictor"
FORMAT_VERSION = 1


def native_bfloat16(device: torch.device) -> bool:
    """Whether this device multiplies bfloat16 natively (CUDA, or a CPU with AVX512-BF16 or AMX).

    Elsewhere bfloat16 is emulated and slower than float32, so inference stays in float32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextmanager
def seeded_torch(seed: int, device: torch.device | None = None):
    """torch's global RNG (initialisation, dropout) seeded for a block and restored after it."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


@contextmanager
def one_cpu_thread(device: torch.device):
    """Run a block on one CPU thread. Training steps on a few dozen cells are too small to split: with
    threads that sleep between operations (the command line's OMP_WAIT_POLICY=PASSIVE) a second thread
    costs more than it gives (docs/benchmarks.md, "Guided search with the graph transformer")."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def seeded_init(seed: int, build):
    """Build a module with parameters drawn from `seed`, leaving the global torch RNG as it was."""
    with seeded_torch(seed):
        return build()


class Predictor:
    """Base class: `fit(cells, y, unlabeled=None)`, `predict(cells)`, `save(dir)`, `Predictor.load(dir)`.

    Subclasses set `kind` and `Config` (a frozen dataclass) and implement `fit`, `predict`,
    `tensors()` (what to save) and `load_tensors()` (inverse). Higher predictions mean better cells.
    """

    kind: ClassVar[str] = ""
    Config: ClassVar[type] = object

    def __init__(self, config: Any = None, *, seed: int = 0, device: str = "auto") -> None:
        self.config = config if config is not None else self.Config()
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.meta: dict[str, Any] = {}
        # Predictors that may infer in bfloat16 for speed (ReNAS on a CPU with native bfloat16)
        # compute in float32 throughout when this is set.
        self.exact = False

    # ---- to implement -------------------------------------------------------------------------
    def fit(self, cells: Cells, y: np.ndarray, unlabeled: Cells | None = None) -> "Predictor":
        raise NotImplementedError

    def predict(self, cells: Cells) -> np.ndarray:
        raise NotImplementedError

    def calibrate(self, scores: np.ndarray, y: torch.Tensor) -> None:
        """Fit the least-squares line from raw scores to targets that puts predictions in the target's
        units (kept only when increasing, so the ranking never changes) and the range of fractional targets."""
        self.calibration = torch.tensor([1.0, 0.0])
        if np.ptp(scores) > 0:
            slope, intercept = np.polyfit(scores, y.cpu().numpy().astype(np.float64), 1)
            if slope > 0:
                self.calibration = torch.tensor([slope, intercept])
        lo, hi = float(y.min()), float(y.max())
        self.target_range = torch.tensor([lo, hi], dtype=torch.float64) if 0 < lo <= hi < 1 else None

    # Predictors that can start from a fitted one of their kind set this to a number of epochs handled by
    # `fine_tune`; guided search then refits later rounds that way (a fraction of a fresh fit's time).
    fine_tunes: ClassVar[bool] = False

    def fine_tune(self, start: "Predictor", cells: Cells, y: np.ndarray, epochs: int) -> "Predictor":
        """Fit on (cells, y) starting from the fitted predictor `start`, for `epochs` epochs."""
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    # ---- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write predictor.json + weights.safetensors (each via a temporary file and rename)."""

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors().items()}
        io.save_safetensors(tensors, directory / "weights.safetensors")
        info = {"format": FORMAT, "version": FORMAT_VERSION, "kind": self.kind, "seed": self.seed,
                "config": dataclasses.asdict(self.config), "meta": self.meta}
        _write_text(directory / "predictor.json", json.dumps(info, indent=2, default=float))
        return directory

    @staticmethod
    def load(directory: str | Path, kind: str | None = None, device: str = "auto") -> "Predictor":
        """Read a predictor directory; a missing, foreign or corrupt one raises ConfigError."""
        from searchlab import registry
        from searchlab.options import build

        directory = Path(directory)
        hint = "train one with `searchlab predictor train --kind renas --out DIR`"
        if not directory.is_dir():
            raise ConfigError(f"predictor directory {directory} does not exist; {hint}")
        info_path, weights_path = directory / "predictor.json", directory / "weights.safetensors"
        if not info_path.is_file():
            raise ConfigError(f"{directory} is not a predictor directory (no predictor.json); {hint}")
        info = read_info(info_path, hint)
        registry.load_plugins(["searchlab.predictors.plugin"])
        if kind is not None and info["kind"] != kind:
            raise ConfigError(f"{directory} holds a {info['kind']!r} predictor, not {kind!r}")
        entry = registry.predictor(info["kind"])
        cls = entry.cls
        try:
            config = build(cls.Config, info["config"], where=f"{info_path} config")
        except ConfigError as exc:  # an option's own range check names the flag, not the file
            if str(info_path) in str(exc):
                raise
            raise ConfigError(f"{info_path} config: {exc}; retrain it") from None
        pred = cls(config, seed=info["seed"], device=device)
        pred.meta = info["meta"]
        if not weights_path.is_file():
            raise ConfigError(f"{directory} has no weights.safetensors; it is incomplete, retrain it")
        try:
            from safetensors.torch import load_file
            tensors = load_file(str(weights_path))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            raise ConfigError(f"{weights_path} is corrupt ({str(exc).splitlines()[0][:80]}); retrain it") from None
        try:
            pred.load_tensors(tensors)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"{weights_path} does not match its predictor.json "
                              f"({str(exc).splitlines()[0][:80]}); retrain it") from None
        return pred


# what predictor.json's metadata may hold, and the type of each (other keys are kept as they are)
META_TYPES = {"space": str, "target": str, "labels": int, "train_size": int, "unlabeled": int, "train_rows": list,
              "train_seconds": (int, float)}


def read_info(path: Path, hint: str) -> dict:
    """predictor.json read and checked field by field (`format`, `version`, `kind`, `seed`, `config`, `meta`);
    anything else is one ConfigError line saying which field is wrong."""
    info = io.read_json(path, "predictor file", f"retrain it ({hint})")
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ConfigError(f"{path} is corrupt or not a searchlab predictor; retrain it ({hint})")
    version = info.get("version")
    if type(version) is not int:
        raise ConfigError(f"{path}: 'version' must be the whole number {FORMAT_VERSION}, found {version!r:.40}; "
                          f"retrain it")
    if version != FORMAT_VERSION:
        raise ConfigError(f"{path.parent} was saved by predictor format {version}, this searchlab reads format "
                          f"{FORMAT_VERSION}; retrain it")
    info.setdefault("seed", 0)
    info["config"] = info.get("config") or {}
    info["meta"] = info.get("meta") or {}
    problems = []
    if not isinstance(info.get("kind"), str):
        problems.append("'kind' must name a predictor")
    if type(info["seed"]) is not int or not 0 <= info["seed"] < 2**63:
        problems.append("'seed' must be a whole number from 0 to 2^63 - 1")
    if not isinstance(info["config"], dict):
        problems.append("'config' must be an object of options")
    if not isinstance(info["meta"], dict):
        problems.append("'meta' must be an object")
    else:
        for key, kind in META_TYPES.items():
            value = info["meta"].get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                problems.append(f"meta '{key}' has the wrong type ({type(value).__name__})")
        rows = info["meta"].get("train_rows") or []
        if not all(type(r) is int and 0 <= r < 2**31 for r in rows):
            problems.append("meta 'train_rows' must be table rows (whole numbers)")
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}; retrain it ({hint})")
    return info


def _write_text(path: Path, text: str) -> None:
    io.write_text(path, text)


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Gaussian rank transform: each target becomes the standard normal quantile of its mid-rank (tied
    targets share one). Accuracies are skewed (most near the top, a long tail of cells that failed to
    train), so a regression on plain z-scores spends its effort on the tail; on normal scores it
    spends it on the ordering of the many good cells."""
    from scipy.stats import norm, rankdata

    y = np.asarray(y, dtype=np.float64)
    return norm.ppf((rankdata(y) - 0.5) / len(y))


def target_knots(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(2, K) knots (score, target), both strictly increasing, for `through_knots`: one per distinct
    target, at the mean score of the cells that have it. From a monotone transform of the targets
    (like `normal_scores`), this is its inverse on the training set."""
    y = np.asarray(y, dtype=np.float64)
    values, group = np.unique(y, return_inverse=True)
    at = np.bincount(group, weights=np.asarray(scores, dtype=np.float64)) / np.bincount(group)
    return np.stack([at, values])


def through_knots(scores: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Scores to target units: linear between the knots, extended beyond them with the end segments'
    slopes, so the map is strictly increasing and the ranking is unchanged. Targets that are
    fractions (all training targets in (0, 1)) are then kept inside (0, 1)."""
    at, values = np.asarray(knots[0], np.float64), np.asarray(knots[1], np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(at) < 2:
        return np.full(scores.shape, values[0] if len(values) else 0.0)
    out = np.interp(scores, at, values)
    low, high = scores < at[0], scores > at[-1]
    out[low] = values[0] + (scores[low] - at[0]) * (values[1] - values[0]) / (at[1] - at[0])
    out[high] = values[-1] + (scores[high] - at[-1]) * (values[-1] - values[-2]) / (at[-1] - at[-2])
    if 0 < values[0] and values[-1] < 1:
        out = bend_into_unit_interval(out, values[0], values[-1])
    return out


def bend_into_unit_interval(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Leave [lo, hi] alone and bend values beyond it smoothly (slope 1 at the edges) towards 0 and 1.

    A calibration extrapolates past the training targets for the best-ranked cells; for a target
    that is a fraction (an accuracy) that would print 102 %. Strictly increasing, so the ranking is
    unchanged.
    """
    v = np.array(values, dtype=np.float64)
    above, below = v > hi, v < lo
    v[above] = hi + (1.0 - hi) * np.tanh((v[above] - hi) / (1.0 - hi))
    v[below] = lo - lo * np.tanh((lo - v[below]) / lo)
    return v
