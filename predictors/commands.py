"""What `searchlab predictor train|eval` and `searchlab predict` do (the CLI only parses and prints)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from searchlab import io
from searchlab.predictors.base import Predictor
from searchlab.predictors.metrics import ranking_report
from searchlab.predictors.table import TARGETS, load_predictor_table
from searchlab.errors import ConfigError, DataError, InvalidArchitecture
from searchlab.engine.seeding import make_rng


def train(kind: str, labels: int, seed: int, target: str, out: str, options: dict[str, Any],
          progress: bool = False, space: str = "nasbench101", dataset: str | None = None) -> dict:
    """Sample `labels` cells of the space's table (seeded), fit a predictor of `kind` on `target` (the
    accuracy on `dataset` where the table has several), save it."""
    from searchlab import registry
    from searchlab.options import build

    registry.load_plugins(["searchlab.predictors.plugin"])
    entry = registry.predictor(kind)
    spaces = getattr(entry.cls, "spaces", ("nasbench101",))
    if space not in spaces:
        raise ConfigError(f"the {kind} predictor works on {' and '.join(spaces)} cells, not {space}; choose "
                          f"--kind renas or semi-gcn for {space}")
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    table = load_predictor_table(space=space, dataset=dataset)
    y_all = table.target(target)
    if not 2 <= labels < len(table):
        raise ConfigError(f"--labels must be between 2 and {len(table) - 1:,}, got {labels}")
    config = build(entry.cls.Config, options, where="predictor options")
    rng = make_rng(seed)
    order = rng.permutation(len(table))
    train_rows = np.sort(order[:labels])
    unlabeled = None
    n_unlabeled = int(getattr(config, "unlabeled", 0))
    if n_unlabeled:
        unlabeled = table.cells.take(order[labels:labels + n_unlabeled])
    predictor = entry.cls(config, seed=seed)
    start = time.perf_counter()
    from searchlab import progress

    with progress.step(f"fitting {kind} on {labels:,} labelled cells"
                       + (f" and {len(unlabeled):,} unlabelled" if unlabeled is not None else "")):
        predictor.fit(table.cells.take(train_rows), y_all[train_rows], unlabeled)
    seconds = time.perf_counter() - start
    predictor.meta.update({"target": target, "labels": int(labels), "train_seconds": round(seconds, 2),
                           "train_rows": [int(r) for r in train_rows],
                           "unlabeled": 0 if unlabeled is None else len(unlabeled)})
    predictor.meta["space"] = space
    if dataset is not None:
        predictor.meta["dataset"] = dataset
    predictor.save(out)
    return {"kind": kind, "out": str(out), "labels": int(labels), "unlabeled": predictor.meta["unlabeled"],
            "target": target, "seed": seed, "train_seconds": round(seconds, 2), "space": space,
            **({"dataset": dataset} if dataset is not None else {})}


def space_of(predictor: Predictor) -> str:
    """The space a saved predictor was trained on (predictors saved before spaces existed: NAS-Bench-101)."""
    return str(predictor.meta.get("space", "nasbench101"))


def _name(table, row: int) -> dict:
    """How a table row is shown: a NAS-Bench-101 cell by its hash, a NAS-Bench-201 one by its arch string."""
    if table.space == "nasbench101":
        return {"hash": str(table.table.hashes[row])}
    return {"arch": table.table.arch(row), "index": int(row)}


def _test_rows(n_cells: int, train_rows: np.ndarray, test: str, seed: int) -> np.ndarray:
    remaining = np.setdiff1d(np.arange(n_cells), train_rows)
    if str(test) == "all":
        return remaining
    try:
        n = int(test)
    except ValueError:
        raise ConfigError(f"--test must be 'all' or a number of held-out cells, got {test!r}") from None
    if not 1 <= n <= len(remaining):
        raise ConfigError(f"--test must be between 1 and {len(remaining):,} held-out cells, got {n}")
    return np.sort(make_rng(seed).choice(remaining, n, replace=False))


def evaluate(directory: str, test: str = "all", seed: int = 0, plot: str | None = None,
             progress: bool = False, exact: bool = False, dataset: str | None = None) -> dict:
    """Kendall tau, Spearman rho and precision@k on cells not used for training, plus a scatter PNG.
    `dataset` scores against another label than the one trained on (NAS-Bench-201: e.g. trained on
    cifar10-valid, scored on cifar10, as the predictor papers do)."""
    predictor = Predictor.load(directory)
    predictor.exact = exact
    dataset = dataset or predictor.meta.get("dataset")
    table = load_predictor_table(space=space_of(predictor), dataset=dataset)
    target = str(predictor.meta.get("target", "test_accuracy"))
    train_rows = np.asarray(predictor.meta.get("train_rows", []), dtype=np.int64)
    rows = _test_rows(len(table), train_rows, test, seed)
    start = time.perf_counter()
    predicted = predictor.predict(table.cells.take(rows), progress=progress)
    seconds = time.perf_counter() - start
    truth = table.target(target)[rows]
    report = ranking_report(truth, predicted, ks=(10, 100))
    best = int(np.argmax(predicted))
    report.update({"kind": predictor.kind, "target": target, "labels": int(predictor.meta.get("labels", len(train_rows))),
                   "test_cells": int(len(rows)), "predict_seconds": round(seconds, 2),
                   **({"dataset": dataset} if dataset else {}),
                   **{f"predicted_best_{k}": v for k, v in _name(table, rows[best]).items()},
                   "predicted_best_true": float(truth[best]),
                   "predicted_best_rank_in_test": int((truth > truth[best]).sum()) + 1})
    report["plot"] = scatter_plot(truth, predicted, plot or str(Path(directory) / "scatter.png"),
                                  title=f"{predictor.kind}, {report['labels']} labels: Kendall tau "
                                        f"{report['kendall_tau']:.3f} on {len(rows):,} cells", target=target)
    return report


def scatter_plot(truth: np.ndarray, predicted: np.ndarray, path: str, title: str, target: str,
                 max_points: int = 30000) -> str:
    """Predicted vs true values as a PNG (a seeded subsample when there are many cells); see scatter_figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = scatter_figure(truth, predicted, title, target, max_points)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def scatter_figure(truth: np.ndarray, predicted: np.ndarray, title: str, target: str, max_points: int = 30000):
    """Two panels, each with the y = x line a perfect predictor would lie on: every cell, and a zoom on the
    bulk of true values (quartiles widened by 3 interquartile ranges, so the few failed cells near 10%
    do not decide it) whose title says how many cells lie outside it."""
    import matplotlib.pyplot as plt
    from searchlab.objectives import axis_scale

    idx = np.arange(len(truth))
    if len(idx) > max_points:
        idx = np.sort(make_rng(0).choice(len(truth), max_points, replace=False))
    name = "accuracy" if target == "test_accuracy" else target
    factor, label = axis_scale(name, [float(np.max(np.abs(truth)))] if len(truth) else [])
    label = ("test " + label) if target == "test_accuracy" else label
    x, y = factor * truth[idx], factor * predicted[idx]
    q1, q3 = np.quantile(x, [0.25, 0.75]) if len(x) else (0.0, 1.0)
    lo_q, hi_q = (max(float(x.min()), q1 - 3 * (q3 - q1)), min(float(x.max()), q3 + 3 * (q3 - q1))) if len(x) \
        else (0.0, 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5))
    for ax, zoom in zip(axes, (False, True)):
        if zoom:
            pad = 0.05 * (hi_q - lo_q or 1.0)
            lo, hi = lo_q - pad, hi_q + pad
            outside = int(((x < lo) | (x > hi) | (y < lo) | (y > hi)).sum())
            ax.set_title(f"zoom on {lo:.4g} to {hi:.4g}: {outside:,} of {len(x):,} cells outside", fontsize=9)
        else:
            both = np.concatenate([x, y]) if len(x) else np.array([0.0, 1.0])
            span = float(both.max() - both.min()) or 1.0
            lo, hi = float(both.min()) - 0.03 * span, float(both.max()) + 0.03 * span
            ax.set_title(f"every cell ({len(x):,} shown)", fontsize=9)
        ax.scatter(x, y, s=3, alpha=0.3, linewidths=0, label="cells")
        ax.plot([lo, hi], [lo, hi], color="tab:red", linewidth=1, label="y = x (perfect prediction)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _rows_of_items(table, items: list, source: str) -> list[int]:
    """Hash strings or spec objects -> table rows (invalid cells raise InvalidArchitecture)."""
    from searchlab.search_spaces.nasbench101 import spec as nb_spec
    from searchlab.search_spaces.nasbench101.table import check_hash

    rows = []
    for i, item in enumerate(items):
        where = f"{source} item {i + 1}" if source else ""
        try:
            if isinstance(item, str):
                rows.append(int(table.table.index_of(check_hash(item))))
            else:
                rows.append(int(table.table.index_of(nb_spec.spec_hash(item))))
        except (InvalidArchitecture, ConfigError) as exc:
            raise type(exc)(f"{where}: {exc}" if where else str(exc)) from None
    return rows


def read_cells_file(path: str) -> list:
    """--file: a JSON list of cells, each a spec object or a hash string."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--file {path} does not exist; give a JSON list of cells (spec objects or hashes)")
    try:
        items = io.parse_json(p.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        where = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise DataError(f"--file {path} is not valid JSON ({where}); give a JSON list "
                        "of cells, e.g. [\"00005c142e6f48ac74fdcf73e3439874\"]") from None
    if not isinstance(items, list) or not items:
        raise DataError(f"--file {path} must hold a non-empty JSON list of cells (spec objects or hashes)")
    return items


def predict(directory: str, *, hashes: list[str] | None = None, specs: list | None = None,
            file: str | None = None, top: int | None = None, progress: bool = False,
            exact: bool = False, archs: list[str] | None = None) -> list[dict]:
    """Predicted values of cells, in input order; with `top`, the K best-predicted cells of the table.

    NAS-Bench-101 cells come as hashes or specs, NAS-Bench-201 ones as arch strings or official
    indices (`archs`, or a --file list of them); giving one space's cells to the other's predictor
    is refused in one line."""
    predictor = Predictor.load(directory)
    predictor.exact = exact
    space = space_of(predictor)
    table = load_predictor_table(space=space)
    if top is not None:
        if top < 1:
            raise ConfigError(f"--top must be at least 1, got {top}")
        scores = table_scores(predictor, directory, table, progress)
        return [{"rank": i + 1, **_name(table, r), "predicted": float(scores[r])} for i, r in
                enumerate(top_rows(scores, top))]
    if space != "nasbench101":
        if hashes or specs:
            raise ConfigError(f"{directory} is a {space} predictor: give its cells as arch strings or indices "
                              f"with --arch (NAS-Bench-101 hashes and specs are for nasbench101 predictors)")
        from searchlab.predictors.features import encoding
        rows = encoding(space)._impl().rows_of(table, [_arch_item(a) for a in archs or []])
        if file:
            rows += encoding(space)._impl().rows_of(table, read_cells_file(file), f"--file {file}")
        if not rows:
            raise ConfigError("say which cells to predict: --arch ARCH (an arch string or index), --file F "
                              "or --all --top K")
        scores = predictor.predict(table.cells.take(np.asarray(rows)), progress=progress)
        return [{**_name(table, r), "predicted": float(s)} for r, s in zip(rows, scores)]
    if archs:
        raise ConfigError(f"{directory} is a nasbench101 predictor: --arch takes NAS-Bench-201 cells; give "
                          "NAS-Bench-101 cells with --hash, --spec or --file")
    rows: list[int] = []
    if hashes:
        rows += _rows_of_items(table, list(hashes), "")
    if specs:
        rows += _rows_of_items(table, list(specs), "")
    if file:
        rows += _rows_of_items(table, read_cells_file(file), f"--file {file}")
    if not rows:
        raise ConfigError("say which cells to predict: --hash H, --spec JSON, --file F or --all --top K")
    scores = predictor.predict(table.cells.take(np.asarray(rows)), progress=progress)
    return [{"hash": str(table.table.hashes[r]), "predicted": float(s)} for r, s in zip(rows, scores)]


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the `k` highest scores, best first, ties to the lower row: what a stable sort of the whole
    array gives, from a partial selection (linear time) and a sort of the k chosen."""
    scores = np.asarray(scores, np.float64)
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    kth = -np.partition(-scores, k - 1)[k - 1]  # the k-th highest score
    above = np.flatnonzero(scores > kth)
    chosen = np.concatenate([above, np.flatnonzero(scores == kth)[:k - len(above)]])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


KEPT_SCORE_FILES = 16


def table_scores(predictor: Predictor, directory: str, table, progress: bool = False) -> np.ndarray:
    """The predictor's score of every table cell. The network's pass over the whole table is what `--top`
    costs, so the scores are kept in the cache folder under a digest of the predictor's files, the table
    and the inference settings; asking again reads them back (the same numbers, in well under a second)."""
    import hashlib

    import torch

    import searchlab
    from searchlab import io
    from searchlab.store.cache import cache_dir

    digest = hashlib.sha256()
    for name in ("predictor.json", "weights.safetensors"):
        digest.update((Path(directory) / name).read_bytes())
    digest.update(f"{table.space} {len(table)} exact={predictor.exact} device={predictor.device} "
                  f"cpu={torch.backends.cpu.get_cpu_capability()} torch={torch.__version__} "
                  f"searchlab={searchlab.__version__}".encode())
    path = cache_dir("predictions", f"{digest.hexdigest()}.npy")
    try:
        scores = np.load(path, allow_pickle=False)
        if scores.shape == (len(table),) and scores.dtype in (np.float32, np.float64):
            try:
                path.touch()  # recently used: kept when older files are dropped
            except OSError:
                pass  # a read-only cache still answers
            return scores
    except (OSError, ValueError):
        pass  # not cached yet, or a damaged cache file: compute again
    scores = np.asarray(predictor.predict(table.cells, progress=progress))
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    try:
        import io as std_io

        buffer = std_io.BytesIO()
        np.save(buffer, scores, allow_pickle=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_bytes(path, buffer.getvalue())
        for old in sorted(path.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)[:-KEPT_SCORE_FILES]:
            old.unlink(missing_ok=True)  # the cache keeps the predictors used last
    except OSError:
        pass  # a cache that cannot be written costs the next call time, nothing else
    return scores


def _arch_item(text: str):
    """--arch: an official index (digits) or an arch string."""
    text = str(text).strip()
    return int(text) if text.lstrip("-").isdigit() else text
