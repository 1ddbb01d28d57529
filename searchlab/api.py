"""searchlab from Python (notebooks and scripts): start, resume and inspect runs, query the benchmarks,
train a predictor and predict. The command line is a thin layer over the same calls (docs/python.md).

    import searchlab
    run = searchlab.search("nasbench101", strategy="evolution", max_evals=100, seed=0, run="runs/evo")
    run.best_trial["objectives"], run.best_params, run.trials(state="failed"), run.to_dataframe()

Every bad argument raises a SearchlabError whose message names Python keyword arguments, not flags.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

from searchlab import options, registry
from searchlab.engine import comparison, run_config, runner
from searchlab.errors import ConfigError, RunStoreError, SearchlabError, in_python_terms
from searchlab.objectives import pareto_front
from searchlab.output.report import filter_trials, trial_row
from searchlab.store.run_store import STORE_NAME
from searchlab.store.run_view import RunView


def _python_errors(fn: Callable) -> Callable:
    """Errors raised inside `fn` name keyword arguments (`max_evals`), not the command line's flags."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SearchlabError as exc:
            raise type(exc)(in_python_terms(str(exc))) from None
    return wrapper


def _existing_run(run: Any, name: str = "run") -> Path:
    path = run_config.run_folder(run, name)
    if not path.exists():
        raise RunStoreError(f"run folder {path} does not exist; start one with "
                            f"searchlab.search(SPACE, ..., run={str(path)!r})")
    return path


class Run:
    """A run folder, read through its store: configuration, trials, the best trial(s), status."""

    def __init__(self, path: str | Path) -> None:
        self.path = _existing_run(path, "path")
        with RunView.open(self.path):  # a damaged run fails here, with the store's own message
            pass

    def _read(self, fn: Callable):
        try:
            with RunView.open(self.path) as run:
                return fn(run)
        except SearchlabError as exc:
            raise type(exc)(in_python_terms(str(exc))) from None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> dict:
        return self._read(lambda run: run.config)

    @property
    def objectives(self) -> dict[str, str]:
        """The evaluator's objectives and directions, {"accuracy": "max", "flops": "min"}; the first is primary."""
        return self._read(lambda run: run.objectives)

    def status(self) -> dict:
        """What `searchlab status --json` prints: counts, budget used, best trial, failure reasons."""
        from searchlab.output import report

        return self._read(report.status)

    def trials(self, state: str | None = None) -> list[dict]:
        """Every trial in order: id, key, genome, state, objectives, cost, error, cached_from. `state`: only
        those asked, running, done or failed, or "cached" (answered from an earlier trial of the same key)."""
        if state is not None:
            filter_trials([], state)  # a bad state fails before the store is read
        return filter_trials(self._read(lambda run: [trial_row(t) for t in run.trials()]), state)

    @property
    def best_trial(self) -> dict | None:
        """The trial with the best primary (first) objective, ties to the earliest, as `trials` gives it;
        None before a trial succeeds. For the trade-offs between all objectives, see `best_trials`."""
        def find(run):
            best = run.best()
            return trial_row(best) if best else None
        return self._read(find)

    def best(self) -> dict | None:
        """The same trial as `best_trial`."""
        return self.best_trial

    @property
    def best_params(self) -> Any:
        """The best trial's genome (what Optuna calls its params), or None before a trial succeeds."""
        best = self.best_trial
        return best["genome"] if best else None

    @property
    def best_trials(self) -> list[dict]:
        """The Pareto front over every objective: the successful trials no other trial beats or equals in
        all objectives and beats in one (one trial per key: repeats answered from the store are left out),
        in trial order. With one objective, the trials that share the best value."""
        def front(run):
            objectives = run.objectives
            done = [t for t in run.trials() if t.cached_from is None and t.result is not None and t.result.ok]
            return [trial_row(done[i]) for i in pareto_front([t.result.objectives for t in done], objectives)]
        return self._read(front)

    def to_dataframe(self):
        """The trials as a pandas DataFrame indexed by trial id: key, state, one column per objective and
        `cost_*` column per cost, the genome flattened into `genome.*` columns (a list: one column per
        position, a dict: one per key, nested ones with dotted names: `genome.ops.3`, `genome.matrix.0.1`),
        datetime_start, datetime_complete (UTC) and duration. Needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("to_dataframe needs pandas: pip install pandas (or searchlab[pandas])") from None
        trials = self._read(lambda run: run.trials())
        rows = []
        for t in trials:
            row: dict[str, Any] = {"id": t.id, "key": t.key, "state": t.state, "error": None,
                                   "cached_from": t.cached_from}
            if t.result is not None:
                row["error"] = t.result.error
                row.update(t.result.objectives)
                row.update({f"cost_{k}": v for k, v in t.result.cost.items()})
            row.update(_flatten(t.genome, "genome"))
            row["datetime_start"], row["datetime_complete"] = t.started, t.finished
            rows.append(row)
        if not rows:
            return pd.DataFrame(columns=["key", "state", "error", "cached_from", "datetime_start",
                                         "datetime_complete", "duration"]).rename_axis("id")
        frame = pd.DataFrame(rows).set_index("id")
        for column in ("datetime_start", "datetime_complete"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        frame["duration"] = frame["datetime_complete"] - frame["datetime_start"]
        return frame


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """{"genome.ops.0": ..., "genome.matrix.0.1": ...}: one entry per leaf of nested lists and dicts."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flatten(v, f"{prefix}.{k}"))
    return out


@_python_errors
def search(space: str, *, strategy: str | None = None, evaluator: str | None = None, run: str | Path | None = None,
           seed: int = 0, max_evals: int | None = None, max_time: float | str | None = None,
           max_epochs: float | None = None, max_cost: float | None = None, backend: str = "local",
           workers: int = 1, device: str = "auto", finalize: bool = True, verbose: bool = False,
           **option_values: Any) -> Run:
    """Create a run and drive it until a budget or the strategy ends (then finalize it, as the command
    line does). Space, strategy and evaluator options are keyword arguments named as their fields,
    e.g. `population=20` for `--population 20`. Returns the Run."""
    run_dir = run_config.run_folder(run) if run is not None else None
    resolved = run_config.resolve(space, {**option_values, "seed": seed, "max_evals": max_evals, "max_time": max_time,
                                          "max_epochs": max_epochs, "max_cost": max_cost, "backend": backend,
                                          "workers": workers, "device": device},
                                  strategy=strategy, evaluator=evaluator, list_known=True)
    run_dir = run_dir or Path(resolved.default_run_dir())
    if (run_dir / STORE_NAME).exists():
        raise RunStoreError(f"{run_dir} already holds a run; continue it with searchlab.resume({str(run_dir)!r}) "
                            f"or pass another run folder")
    resolved.create(run_dir)
    return resume(run_dir, finalize=finalize, verbose=verbose)


@_python_errors
def resume(run: str | Path, *, max_evals: int | None = None, max_time: float | str | None = None,
           max_epochs: float | None = None, max_cost: float | None = None, finalize: bool = True,
           verbose: bool = False) -> Run:
    """Go on with a stored run (a larger budget may be given) and finalize it when it ends."""
    path = _existing_run(run)
    budget = run_config.budget({"max_evals": max_evals, "max_time": max_time, "max_epochs": max_epochs,
                                "max_cost": max_cost})
    outcome = runner.run(path, plugins=registry.builtin_plugins(), budget=budget, verbose=verbose)
    if finalize and run_config.finalizes(outcome.reason, outcome.best):
        runner.finalize(path, plugins=registry.builtin_plugins(), verbose=verbose)
    return Run(path)


@_python_errors
def open_run(run: str | Path) -> Run:
    """An existing run, to inspect (trials, best_trial, status) or to `resume`."""
    return Run(_existing_run(run))


@_python_errors
def nasbench101_query(*, hash: str | None = None, spec: dict | str | None = None, epochs: int = 108,
                      db: str | None = None) -> dict:
    """A NAS-Bench-101 cell's record (by its hash, or a spec {"matrix", "ops"}), as `nasbench101 query`."""
    from searchlab.search_spaces.nasbench101.commands import query

    if (hash is None) == (spec is None):
        raise ConfigError("give exactly one of hash='<32 hex digits>' or spec={'matrix': [[...]], 'ops': [...]}")
    if hash is not None and not isinstance(hash, str):
        raise ConfigError(f"hash must be a str of 32 hex digits, got {hash!r}")
    if spec is not None and not isinstance(spec, (dict, str)):
        raise ConfigError(f"spec must be a dict {{'matrix': [[...]], 'ops': [...]}} or its JSON text, got {spec!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise ConfigError(f"epochs must be an int (4, 12, 36 or 108), got {epochs!r}")
    return query(db, hash, json.dumps(spec) if isinstance(spec, dict) else spec, epochs)


@_python_errors
def nasbench201_query(*, arch: str | None = None, index: int | None = None) -> dict:
    """A NAS-Bench-201 cell's record (by its arch string or official index), as `nasbench201 query`:
    CIFAR-10 test accuracy, rank, functional key and the cells computing the same function."""
    from searchlab.search_spaces.nasbench201.space import query

    if (arch is None) == (index is None):
        raise ConfigError("give exactly one of arch='|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' or index=0..15624")
    if arch is not None and not isinstance(arch, str):
        raise ConfigError(f"arch must be an arch string, got {arch!r}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise ConfigError(f"index must be an int from 0 to 15624, got {index!r}")
    return query(arch, index)


@_python_errors
def train_predictor(kind: str, out: str | Path, *, labels: int = 424, seed: int = 0,
                    target: str = "test_accuracy", space: str = "nasbench101", **predictor_options: Any) -> dict:
    """Fit a predictor on `labels` random cells of the space's table (nasbench101 or nasbench201) and save
    it to `out` (`predictor train`)."""
    from searchlab.predictors.commands import train

    known = options.field_names(registry.predictor(kind).cls.Config)
    unknown = sorted(set(predictor_options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for predictor {kind}; choose from "
                          f"{', '.join(sorted(known))}")
    return train(kind, labels, seed, target, str(run_config.run_folder(out, "out")), predictor_options, space=space)


@_python_errors
def predict(predictor_dir: str | Path, *, hashes: list[str] | None = None, specs: list | None = None,
            archs: list[str | int] | None = None, top: int | None = None) -> list[dict]:
    """Predicted values of cells (NAS-Bench-101: `hashes` or `specs`; NAS-Bench-201: `archs`, arch strings
    or indices), or with `top` the K best-predicted cells of the whole table, best first."""
    from searchlab.predictors.commands import predict as predict_cells

    if top is not None and (isinstance(top, bool) or not isinstance(top, int)):
        raise ConfigError(f"top must be an int of at least 1, got {top!r}")
    if top is None and not (hashes or specs or archs):
        raise ConfigError("say which cells to predict: hashes=[...] or specs=[...] (NAS-Bench-101), archs=[...] "
                          "(NAS-Bench-201), or top=K for the K best of the table")
    for name, value in (("hashes", hashes), ("specs", specs), ("archs", archs)):
        if value is not None and not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {type(value).__name__}")
    return predict_cells(str(run_config.run_folder(predictor_dir, "predictor_dir")), hashes=hashes, specs=specs,
                         archs=[str(a) for a in archs] if archs else None, top=top)


# strategies x seeds on a table space (docs/compare.md), with errors in Python terms like every call here
compare = _python_errors(comparison.compare)
