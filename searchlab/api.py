"""searchlab from Python (notebooks and scripts): start, resume and inspect runs, query the benchmark,
train a predictor and predict. The command line is a thin layer over the same calls (docs/python.md).

    import searchlab
    run = searchlab.search("nasbench101", strategy="evolution", max_evals=100, seed=0, run="runs/evo")
    run.best()["objectives"], run.trials(state="failed"), run.to_dataframe()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from searchlab import options, registry

from searchlab.engine import run_config, runner
from searchlab.output.report import trial_row
from searchlab.store.run_view import RunView
from searchlab.errors import ConfigError

class Run:
    """A run folder, read through its store: configuration, trials, best trial, status."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with RunView.open(self.path):  # a missing or damaged run fails here, with the store's own message
            pass

    def _read(self, fn: Callable):
        with RunView.open(self.path) as run:
            return fn(run)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> dict:
        return self._read(lambda run: run.config)

    def status(self) -> dict:
        """What `searchlab status --json` prints: counts, budget used, best trial, failure reasons."""
        from searchlab.output import report

        return self._read(report.status)

    def trials(self, state: str | None = None) -> list[dict]:
        """Every trial in order: id, key, genome, state, objectives, cost, error (`state`: only those)."""
        rows = self._read(lambda run: [trial_row(t) for t in run.trials()])
        return [r for r in rows if state is None or r["state"] == state]

    def best(self) -> dict | None:
        """The trial with the best primary objective (ties: the earliest), as `trials` gives it."""
        def find(run):
            best = run.best()
            return trial_row(best) if best else None
        return self._read(find)

    def to_dataframe(self):
        """The trials as a pandas DataFrame, one column per objective and cost (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("to_dataframe needs pandas: pip install pandas (or searchlab[pandas])") from None
        rows = []
        for t in self.trials():
            row = {k: t[k] for k in ("id", "key", "state", "error", "cached_from")}
            row.update(t["objectives"])
            row.update({f"cost_{k}": v for k, v in t["cost"].items()})
            row["genome"] = t["genome"]
            rows.append(row)
        return pd.DataFrame(rows).set_index("id")


def search(space: str, *, strategy: str | None = None, evaluator: str | None = None, run: str | Path | None = None,
           seed: int = 0, max_evals: int | None = None, max_time: float | None = None,
           max_epochs: float | None = None, max_cost: float | None = None, backend: str = "local",
           workers: int = 1, device: str = "auto", finalize: bool = True, verbose: bool = False,
           **option_values: Any) -> Run:
    """Create a run and drive it until a budget or the strategy ends (then finalize it, as the command
    line does). Space, strategy and evaluator options are keyword arguments named as their fields,
    e.g. `population=20` for `--population 20`. Returns the Run."""
    resolved = run_config.resolve(space, {**option_values, "seed": seed, "max_evals": max_evals, "max_time": max_time,
                                          "max_epochs": max_epochs, "max_cost": max_cost, "backend": backend,
                                          "workers": workers, "device": device},
                                  strategy=strategy, evaluator=evaluator)
    run_dir = Path(run or resolved.default_run_dir())
    resolved.create(run_dir)
    return resume(run_dir, finalize=finalize, verbose=verbose)


def resume(run: str | Path, *, max_evals: int | None = None, max_time: float | None = None,
           max_epochs: float | None = None, max_cost: float | None = None, finalize: bool = True,
           verbose: bool = False) -> Run:
    """Go on with a stored run (a larger budget may be given) and finalize it when it ends."""
    budget = runner.Budget(max_evals=max_evals, max_time=max_time, max_epochs=max_epochs, max_cost=max_cost)
    outcome = runner.run(run, plugins=registry.builtin_plugins(), budget=budget, verbose=verbose)
    if finalize and run_config.finalizes(outcome.reason, outcome.best):
        runner.finalize(run, plugins=registry.builtin_plugins(), verbose=verbose)
    return Run(run)


def open_run(run: str | Path) -> Run:
    """An existing run, to inspect (trials, best, status) or to `resume`."""
    return Run(run)


def nasbench101_query(*, hash: str | None = None, spec: dict | str | None = None, epochs: int = 108,
                      db: str | None = None) -> dict:
    """A NAS-Bench-101 cell's record (by its hash, or a spec {"matrix", "ops"}), as `nasbench101 query`."""
    import json

    from searchlab.search_spaces.nasbench101.commands import query

    return query(db, hash, json.dumps(spec) if isinstance(spec, dict) else spec, epochs)


def train_predictor(kind: str, out: str | Path, *, labels: int = 424, seed: int = 0,
                    target: str = "test_accuracy", **predictor_options: Any) -> dict:
    """Fit a predictor on `labels` random cells of the table and save it to `out` (`predictor train`)."""
    from searchlab.predictors.commands import train

    known = options.field_names(registry.predictor(kind).cls.Config)
    unknown = sorted(set(predictor_options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for predictor {kind}; choose from "
                          f"{', '.join(sorted(known))}")
    return train(kind, labels, seed, target, str(out), predictor_options)


def predict(predictor_dir: str | Path, *, hashes: list[str] | None = None, specs: list | None = None,
            top: int | None = None) -> list[dict]:
    """Predicted values of cells (by hash or spec), or with `top` the K best-predicted cells of the table."""
    from searchlab.predictors.commands import predict as predict_cells

    return predict_cells(str(predictor_dir), hashes=hashes, specs=specs, top=top)
