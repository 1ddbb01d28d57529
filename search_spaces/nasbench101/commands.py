"""What the `searchlab nasbench101 ...` commands do (the CLI only parses flags and prints)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from searchlab import io
from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.search_spaces.nasbench101.table import Table, check_hash, load_table
from searchlab.errors import ConfigError, DataError


def parse_spec_arg(text: str) -> dict:
    """--spec value: inline JSON or @file.json."""
    source = "--spec"
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise ConfigError(f"--spec {text}: file {path} does not exist")
        source, text = f"--spec file {path}", path.read_text(encoding="utf-8", errors="replace")
    try:
        genome = io.parse_json(text)
    except ValueError as exc:
        where = (f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError)
                 else str(exc))
        raise ConfigError(f"{source} is not valid JSON ({where}); "
                          'write e.g. {"matrix": [[0,1],[0,0]], "ops": ["input","output"]}') from None
    return genome


def resolve_cell(table: Table, hash_text: str | None, spec_text: str | None) -> tuple[str, dict]:
    """(hash, genome) from --hash or --spec; the cell must be in the table."""
    if hash_text:
        h = check_hash(hash_text)
        return h, table.genome(table.index_of(h))
    genome = nb_spec.validate(parse_spec_arg(spec_text or ""))
    h = nb_spec.spec_hash(genome)
    table.index_of(h)  # raises "not in NAS-Bench-101" (cannot happen for a valid cell of the full table)
    return h, genome


def query(db: str | None, hash_text: str | None, spec_text: str | None, epochs: int = 108) -> dict:
    table = load_table(db)
    h, genome = resolve_cell(table, hash_text, spec_text)
    fixed, computed = table.get_metrics_from_hash(h)
    i = table.index_of(h)
    out = {"hash": h, "matrix": genome["matrix"], "ops": genome["ops"],
           "trainable_parameters": fixed["trainable_parameters"], "flops": fixed["flops"],
           "rank_by_test_accuracy": table.rank_of(float(table.test_accuracy[i])), "cells": len(table)}
    if epochs not in computed:
        raise ConfigError(f"the table has no runs at {epochs} epochs (it has: "
                          f"{', '.join(map(str, sorted(computed)))}); use --epochs with one of those")
    out["epochs"] = epochs
    out["runs"] = computed[epochs]
    mean = table.query_mean(genome, epochs)
    out["mean"] = {k: mean[k] for k in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")}
    out["repeats"] = mean["repeats"]
    table.close()
    return out


def stats(db: str | None, top: int = 5) -> dict:
    """Counts by vertex count, the accuracy distribution and the best cells."""
    table = load_table(db)
    acc = table.test_accuracy.astype(np.float64)
    ok = ~np.isnan(acc)
    counts = {int(n): int(c) for n, c in zip(*np.unique(table.n_vertices, return_counts=True))}
    q = np.quantile(acc[ok], [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]) if ok.any() else [np.nan] * 9
    best = np.argsort(-np.where(ok, acc, -np.inf))[:top]
    hist, edges = np.histogram(acc[ok], bins=[0, 0.5, 0.8, 0.85, 0.9, 0.92, 0.93, 0.94, 0.95, 1.0])
    by_vertices = {}
    for n in counts:
        sel = ok & (table.n_vertices == n)
        by_vertices[n] = {"cells": counts[n], "mean_test_accuracy": float(acc[sel].mean()) if sel.any() else None,
                          "best_test_accuracy": float(acc[sel].max()) if sel.any() else None}
    return {
        "source": table.source, "cells": len(table), "by_vertices": by_vertices,
        "test_accuracy_quantiles": {k: float(v) for k, v in zip(
            ("min", "p01", "p10", "p25", "median", "p75", "p90", "p99", "max"), q)},
        "test_accuracy_histogram": [{"from": float(a), "to": float(b), "cells": int(c)}
                                    for a, b, c in zip(edges[:-1], edges[1:], hist)],
        "mean_test_accuracy": float(acc[ok].mean()) if ok.any() else None,
        "best": [{"rank": r + 1, "hash": str(table.hashes[i]), "test_accuracy": float(acc[i]),
                  "flops": None if np.isnan(table.flops[i]) else float(table.flops[i]), **table.genome(int(i))}
                 for r, i in enumerate(best)],
    }


def enumerate_to(out: str | None, progress: bool = True, workers: int = 1, max_vertices: int = 7) -> dict:
    """Run the enumeration, compare with the bundled table (whole space only), optionally write the cells."""
    from searchlab.search_spaces.nasbench101.enumeration import enumerate_cells

    if out and Path(out).suffix not in (".jsonl", ".npz"):
        raise ConfigError(f"--out {out}: use a .npz (arrays) or .jsonl (one cell per line) file name")
    start = time.perf_counter()
    result = enumerate_cells(max_vertices=max_vertices, progress=progress, workers=workers)
    seconds = time.perf_counter() - start
    ordered = result.sorted_by_hash()
    counts = result.cumulative_counts()[:max_vertices - 1]
    summary = {"cells": int(len(result.hashes)), "labelled_graphs": int(result.labelled_graphs),
               "cumulative_unique_by_max_vertices": dict(zip(range(2, max_vertices + 1), counts)),
               "seconds": round(seconds, 2)}
    if max_vertices < 7:
        if out:
            summary["out"] = write_enumeration(ordered, out)
        return summary
    try:
        bundled = load_table()
        same = (len(bundled) == len(ordered.hashes)
                and np.array_equal(bundled._hex, ordered.hashes)
                and np.array_equal(bundled.n_vertices, ordered.n_vertices)
                and np.array_equal(bundled.adj_bits, ordered.adj_bits)
                and np.array_equal(bundled.ops, ordered.ops))
        summary["same_cells_as_bundled_table"] = bool(same)
    except DataError:
        pass
    if out:
        summary["out"] = write_enumeration(ordered, out)
    return summary


def write_enumeration(result: Any, out: str) -> str:
    """`.npz` (arrays, sorted by hash) or `.jsonl` (one {"hash", "matrix", "ops"} per line)."""
    from searchlab.search_spaces.nasbench101.table import bits_to_matrices

    path = Path(out)
    if path.suffix not in (".jsonl", ".npz"):
        raise ConfigError(f"--out {out}: use a .npz (arrays) or .jsonl (one cell per line) file name")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        if path.suffix == ".jsonl":
            mats = bits_to_matrices(result.n_vertices, result.adj_bits)
            with open(tmp, "w", encoding="utf-8") as fh:
                for i in range(len(result.hashes)):
                    g = nb_spec.from_arrays(mats[i], result.ops[i])
                    fh.write(json.dumps({"hash": result.hashes[i].decode(), **g}, separators=(",", ":")) + "\n")
        else:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, hashes=result.hashes, n_vertices=result.n_vertices,
                                    adj_bits=result.adj_bits, ops=result.ops)

    io.atomic_write(path, write)
    return str(path)


def draw(db: str | None, hash_text: str | None, spec_text: str | None, out: str) -> dict:
    from searchlab.search_spaces.nasbench101.draw import draw_cell

    if not out.lower().endswith(".png"):
        raise ConfigError(f"--out {out}: give a .png file name")
    table = load_table(db)
    h, genome = resolve_cell(table, hash_text, spec_text)
    i = table.index_of(h)
    acc = float(table.test_accuracy[i])
    draw_cell(genome, out, title=f"{h}  test accuracy {acc:.4f}")
    return {"hash": h, "out": out, "test_accuracy": acc}
