"""Strategies compared over many seeds on a table space, as NAS papers compare them.

A comparison is an experiment folder holding one ordinary run per strategy and seed
(`OUT/<strategy>/seed-<k>/run.sqlite`) and `OUT/comparison.json`, the plan. Every run is created,
driven and resumed by the engine like any other, so an interrupted comparison goes on where it
stopped: finished runs are reused, unfinished ones resume, missing ones start. Runs go in parallel
over `jobs` processes. The summary scores each run's best cell against the whole table (rank,
percentile, regret) and each strategy against a baseline strategy on the same seeds.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np

from searchlab import io, options, registry
from searchlab.engine import run_config
from searchlab.errors import ConfigError
from searchlab.store.run_store import STORE_NAME

PLAN_NAME = "comparison.json"
SUMMARY_NAME = "summary.json"
TABLE_NAME = "summary.md"
PLOT_NAME = "regret.png"


def table_spaces() -> dict[str, Callable[[], np.ndarray]]:
    """The spaces whose every cell has a recorded accuracy (registered with `table=`): the primary objective
    of their default evaluator, what a comparison ranks the runs' best cells against."""
    registry.load_builtins()
    return {name: registry.space(name).table for name in registry.spaces() if registry.space(name).table}


@dataclass(frozen=True)
class Plan:
    """What a comparison runs: stored in OUT/comparison.json, checked again when it resumes."""

    space: str
    strategies: tuple[str, ...]  # "NAME" or "NAME:option=value,option=value"
    seeds: tuple[int, ...]
    max_evals: int
    baseline: str

    def runs(self, out: Path) -> list[tuple[str, int, Path]]:
        return [(spec, seed, out / folder_name(spec) / f"seed-{seed}") for spec in self.strategies
                for seed in self.seeds]


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """"evolution:population=20,sample_size=5" -> ("evolution", {"population": 20, "sample_size": 5})."""
    name, _, rest = str(spec).partition(":")
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"strategy {spec!r}: write its options as NAME:option=value,option=value")
        try:
            values[key.strip().replace("-", "_")] = json.loads(text)
        except ValueError:
            values[key.strip().replace("-", "_")] = text
    return name.strip(), values


def folder_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", spec).strip("-") or "strategy"


def make_plan(space: str, strategies: list[str], seeds: list[int], max_evals: int, baseline: str | None) -> Plan:
    """A checked plan: each strategy and its options resolve as `searchlab search` resolves them."""
    tables = table_spaces()
    if space not in tables:
        raise ConfigError(f"compare runs on a table space, where every cell's accuracy is known: "
                          f"{', '.join(tables)}; got {space!r}")
    strategies = list(dict.fromkeys(str(s) for s in strategies or []))
    if not strategies:
        raise ConfigError("name at least one strategy to compare, e.g. random evolution")
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be whole numbers of 0 or more, got {seeds!r}")
    names = [folder_name(s) for s in strategies]
    if len(set(names)) != len(names):
        raise ConfigError("two strategies would share a folder; write their options differently")
    for spec in strategies:
        name, values = parse_strategy(spec)
        known = options.field_names(registry.strategy(name).config)  # the space and evaluator stay as they are
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"strategy {spec}: unknown option(s) {', '.join(unknown)}; {name} takes "
                              f"{', '.join(sorted(known)) or 'no options'}")
        run_config.resolve(space, {**values, "seed": seeds[0], "max_evals": max_evals}, strategy=name,
                           where=f"strategy {spec}")
    baseline = strategies[0] if baseline is None else str(baseline)
    same_name = [s for s in strategies if parse_strategy(s)[0] == baseline]
    if baseline not in strategies and len(same_name) == 1:  # a bare name stands for its one spec
        baseline = same_name[0]
    if baseline not in strategies:
        raise ConfigError(f"the baseline {baseline!r} is not among the strategies compared: {', '.join(strategies)}")
    return Plan(space, tuple(strategies), tuple(dict.fromkeys(seeds)), int(max_evals), baseline)


def load_plan(out: Path) -> Plan | None:
    path = out / PLAN_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Plan(str(data["space"]), tuple(map(str, data["strategies"])), tuple(int(s) for s in data["seeds"]),
                    int(data["max_evals"]), str(data["baseline"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is damaged; move it away to start this comparison again (its runs stay "
                          f"and are reused)") from None


def check_resumable(stored: Plan, plan: Plan, out: Path) -> None:
    """Runs may be added to a comparison (strategies, seeds); its space and budget stay as they were."""
    for field in ("space", "max_evals"):
        if getattr(stored, field) != getattr(plan, field):
            raise ConfigError(f"{out} compares {stored.space} runs of max_evals {stored.max_evals}; give the same "
                              f"space and budget to resume it, or another output folder")


def _threads_for(jobs: int) -> None:
    """Each job gets its share of the cores, so parallel runs that train networks do not oversubscribe."""
    share = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = share


def run_one(space: str, spec: str, seed: int, max_evals: int, folder: str) -> dict:
    """Create (when missing) and drive one run to its budget; an existing run resumes where it stopped."""
    from searchlab.engine import runner

    registry.load_builtins()
    start = time.perf_counter()
    if not (Path(folder) / STORE_NAME).exists():
        name, values = parse_strategy(spec)
        run_config.resolve(space, {**values, "seed": seed, "max_evals": max_evals}, strategy=name,
                           where=f"strategy {spec}").create(folder)
    # the comparison's budget, whatever a hand-made resume of this folder may have stored since
    outcome = runner.run(folder, plugins=registry.builtin_plugins(), budget=runner.Budget(max_evals=max_evals))
    return {"strategy": spec, "seed": seed, "stopped_by": outcome.reason, "seconds": time.perf_counter() - start}


def _stop_if_interrupted(info: dict) -> None:
    """Ctrl-C stops the run it reaches (stored, resumable); the comparison stops with it."""
    if info["stopped_by"] == "interrupted":
        raise KeyboardInterrupt


def _finished(folder: Path, max_evals: int) -> bool:
    from searchlab.store.run_view import RunView

    if not (folder / STORE_NAME).exists():
        return False
    with RunView.open(folder) as run:
        return run.budget_used()["max_evals"] >= max_evals


def compare(space: str | None = None, strategies: list[str] | None = None, *, out: str | Path,
            seeds: int | list[int] = 10, max_evals: int | None = None, baseline: str | None = None,
            jobs: int | None = None, plot: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Run every strategy on every seed (resuming what `out` already holds) and summarise them.
    `seeds`: a count (seeds 0 to N-1) or a list. With no space, the plan stored in `out` is resumed.
    Returns the summary (also written to OUT/summary.json, OUT/summary.md and OUT/regret.png)."""
    out = run_config.run_folder(out, "out")
    stored = load_plan(out)
    if space is None:
        if stored is None:
            raise ConfigError(f"{out} holds no comparison ({PLAN_NAME} is missing); name a space and strategies")
        plan = stored
    else:
        if max_evals is None:
            raise ConfigError("give max_evals: the queries each run may make")
        seed_list = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else list(seeds)
        run_config.budget({"max_evals": max_evals})
        plan = make_plan(space, list(strategies or []), seed_list, max_evals, baseline)
        if stored is not None:
            check_resumable(stored, plan, out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; pass a folder for the comparison")
    if (out / STORE_NAME).exists():
        raise ConfigError(f"{out} is a run folder; pass another folder for the comparison")
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / PLAN_NAME, asdict(plan))
    todo = [(spec, seed, folder) for spec, seed, folder in plan.runs(out) if not _finished(folder, plan.max_evals)]
    say = log or (lambda line: None)
    total = len(plan.strategies) * len(plan.seeds)
    say(f"{total} runs ({len(plan.strategies)} strategies x {len(plan.seeds)} seeds), {total - len(todo)} already "
        f"finished; results in {out}")
    jobs = max(1, min(len(todo) or 1, jobs or os.cpu_count() or 1))
    done = total - len(todo)
    if jobs == 1:
        for spec, seed, folder in todo:
            info = run_one(plan.space, spec, seed, plan.max_evals, str(folder))
            done += 1
            say(f"[{done}/{total}] {spec} seed {seed}: {info['stopped_by']} in {info['seconds']:.0f} s")
            _stop_if_interrupted(info)
    elif todo:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_threads_for,
                                 initargs=(jobs,)) as pool:
            pending = {pool.submit(run_one, plan.space, spec, seed, plan.max_evals, str(folder))
                       for spec, seed, folder in todo}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        info = future.result()
                        done += 1
                        say(f"[{done}/{total}] {info['strategy']} seed {info['seed']}: {info['stopped_by']} in "
                            f"{info['seconds']:.0f} s")
                        _stop_if_interrupted(info)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # the runs in flight store what they have
                raise
    summary = summarise(plan, out)
    io.write_json(out / SUMMARY_NAME, summary)
    io.write_text(out / TABLE_NAME, markdown_table(summary) + "\n")
    if plot:
        from searchlab.output.comparison_plot import plot_regret

        plot_regret(summary, out / PLOT_NAME)
    return summary


def _run_record(folder: Path, accuracies: np.ndarray, max_evals: int) -> dict:
    """One run scored against the table: the best cell's accuracy, rank and percentile, regret per query."""
    from searchlab.store.run_view import RunView

    with RunView.open(folder) as run:
        name = next(iter(run.objectives))
        values = [float(t.result.objectives[name]) for t in run.evaluated() if name in t.result.objectives]
    if not values:
        return {"queries": 0, "best_accuracy": None, "rank": None, "rank_percentile": None, "regret": []}
    best = max(values)
    top = float(accuracies.max())
    rank = int((accuracies > accuracies.dtype.type(best)).sum()) + 1
    so_far = np.maximum.accumulate(np.asarray(values[:max_evals], np.float64))
    return {"queries": len(values), "best_accuracy": best, "rank": rank,
            "rank_percentile": 100.0 * rank / len(accuracies), "found_best": best >= top - 1e-7,
            "regret": [max(0.0, top - v) for v in so_far]}


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(plan: Plan, out: Path) -> dict:
    """Per run and per strategy: best accuracy, rank percentile, median rank, wins against the baseline."""
    accuracies = np.asarray(table_spaces()[plan.space]())
    runs = {(spec, seed): _run_record(folder, accuracies, plan.max_evals) for spec, seed, folder in plan.runs(out)}
    base = {seed: runs[(plan.baseline, seed)]["best_accuracy"] for seed in plan.seeds}
    rows = []
    for spec in plan.strategies:
        records = [runs[(spec, seed)] for seed in plan.seeds if runs[(spec, seed)]["best_accuracy"] is not None]
        accs = [r["best_accuracy"] for r in records]
        acc_mean, acc_std = _mean_std(accs)
        pct_mean, pct_std = _mean_std([r["rank_percentile"] for r in records])
        pairs = [(runs[(spec, seed)]["best_accuracy"], base[seed]) for seed in plan.seeds
                 if runs[(spec, seed)]["best_accuracy"] is not None and base[seed] is not None]
        rows.append({"strategy": spec, "runs": len(records),
                     "median_queries": statistics.median([r["queries"] for r in records]) if records else 0,
                     "best_accuracy_mean": acc_mean, "best_accuracy_std": acc_std,
                     "rank_percentile_mean": pct_mean, "rank_percentile_std": pct_std,
                     "median_rank": statistics.median([r["rank"] for r in records]) if records else None,
                     "found_best": sum(bool(r["found_best"]) for r in records),
                     "wins": sum(a > b for a, b in pairs), "ties": sum(a == b for a, b in pairs),
                     "losses": sum(a < b for a, b in pairs), "paired_seeds": len(pairs)})
    return {"space": plan.space, "cells": len(accuracies), "table_best": float(accuracies.max()),
            "max_evals": plan.max_evals, "seeds": list(plan.seeds), "baseline": plan.baseline, "strategies": rows,
            "runs": [{"strategy": spec, "seed": seed, "run": str(folder), **runs[(spec, seed)]}
                     for spec, seed, folder in plan.runs(out)]}


def _pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 4, unit: str = "") -> str:
    if mean is None:
        return "-"
    return f"{scale * mean:.{digits}f}{unit} ± {scale * std:.{digits}f}{unit}"


def markdown_table(summary: dict) -> str:
    """The summary as the Markdown table docs/benchmarks.md uses."""
    cells = summary["cells"]
    lines = [f"| strategy | seeds | median queries | best accuracy (mean ± std) | rank percentile (mean ± std) | "
             f"median rank (of {cells:,}) | seeds finding the best | wins vs {summary['baseline']} (same seed) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary["strategies"]:
        wins = "-" if row["strategy"] == summary["baseline"] else f"{row['wins']}/{row['paired_seeds']}"
        rank = "-" if row["median_rank"] is None else f"{row['median_rank']:g}"
        lines.append(f"| {row['strategy']} | {row['runs']} | {row['median_queries']:g} | "
                     f"{_pm(row['best_accuracy_mean'], row['best_accuracy_std'])} | "
                     f"{_pm(row['rank_percentile_mean'], row['rank_percentile_std'], digits=3, unit=' %')} | "
                     f"{rank} | {row['found_best']}/{row['runs']} | {wins} |")
    return "\n".join(lines)
