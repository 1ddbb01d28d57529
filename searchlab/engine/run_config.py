"""One place that turns what a user asked for (flags, a `--config` file, Python keyword arguments) into a
run's configuration, and decides when a run is finalized. The command line and the Python API both
call it, so the two cannot drift apart.

`resolve` returns a frozen, JSON-serialisable `RunConfig`: names, the three option records, seed, budget,
engine options and the plug-in module behind each name the run uses. `runner.create_run` stores it, so
`resume` can load those modules again, or name the one to trust when it is missing (it never imports
what a run folder names on its own word).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from searchlab import options, registry
from searchlab.errors import ConfigError

ENGINE_OPTIONS = {"seed", "max_evals", "max_time", "max_epochs", "max_cost", "backend", "workers", "device"}
BUDGET_OPTIONS = ("max_evals", "max_time", "max_epochs", "max_cost")
# a run that ended for one of these reasons (with a successful trial) gets its final step
FINALIZE_REASONS = frozenset({"finished", "max_evals", "max_time", "max_epochs", "max_cost", "exhausted"})


def budget(values: dict):
    """A `runner.Budget` from the budget options among `values` (absent or None: unlimited; a duration may be
    text such as "20m"), checked as `runner.Budget` checks every budget."""
    from searchlab.engine import runner

    limits = {k: values.get(k) for k in BUDGET_OPTIONS}
    if isinstance(limits["max_time"], str):
        limits["max_time"] = options.parse_duration(limits["max_time"])
    return runner.Budget(**limits)


def run_folder(value: Any, name: str = "run") -> Path:
    """A run folder given from Python: a path (str or os.PathLike), not empty."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError(f"{name} must be a folder path (a str or pathlib.Path), got {value!r}")
    return Path(value)


def finalizes(reason: str, best: Any) -> bool:
    """Whether a run that stopped for `reason` is finalized: every reason but an interruption, once a trial
    succeeded."""
    return reason in FINALIZE_REASONS and best is not None


@dataclass(frozen=True)
class RunConfig:
    """A new run's resolved configuration (JSON-serialisable: `asdict`)."""

    space: str
    strategy: str
    evaluator: str
    space_config: dict
    strategy_config: dict
    evaluator_config: dict
    seed: int = 0
    budget: dict = field(default_factory=dict)  # max_evals, max_time, max_epochs, max_cost
    backend: str = "local"
    workers: int = 1
    device: str = "auto"
    extra: dict | None = None  # backend settings (Ray)
    plugins: tuple[str, ...] = ()  # the plug-in modules `resume` loads again: built-ins and those behind the names

    def create(self, run_dir: str | Path):
        """Store the run (every object is built once first, so a bad option fails here)."""
        from searchlab.engine import runner

        return runner.create_run(run_dir, space=self.space, strategy=self.strategy, evaluator=self.evaluator,
                                 space_config=self.space_config, strategy_config=self.strategy_config,
                                 evaluator_config=self.evaluator_config, seed=self.seed,
                                 budget=runner.Budget(**self.budget), backend=self.backend, workers=self.workers,
                                 device=self.device, plugins=list(self.plugins), extra=self.extra)

    def default_run_dir(self) -> str:
        return f"runs/{self.space}-{self.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"

    def to_json(self) -> dict:
        return asdict(self)


def option_names(space: str, strategy: str | None = None, evaluator: str | None = None) -> set[str]:
    """Every option a search of `space` with this strategy and evaluator takes (engine options included)."""
    space_entry = registry.space(space)
    strat_entry = registry.strategy(strategy or space_entry.default_strategy)
    eval_entry = registry.evaluator(evaluator or space_entry.default_evaluator)
    return (ENGINE_OPTIONS | options.field_names(space_entry.config) | options.field_names(strat_entry.config)
            | options.field_names(eval_entry.config))


def resolve(space: str, values: dict, *, strategy: str | None = None, evaluator: str | None = None,
            where: str = "options", ignore: set[str] = frozenset(), extra: dict | None = None,
            list_known: bool = False) -> RunConfig:
    """A RunConfig from option values keyed by field name (flags over a config file, or keyword arguments).
    An option no part of the run takes is refused (naming the ones it takes with `list_known`, for Python
    callers who have no --help); `ignore` names keys the caller handles itself."""
    known = option_names(space, strategy, evaluator)
    unknown = sorted(set(values) - known - set(ignore))
    if unknown:
        hint = (f"it takes: {', '.join(sorted(known))}" if list_known
                else f"see `searchlab search {space} --help`")
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {space}; {hint}")
    space_entry = registry.space(space)
    strategy = strategy or space_entry.default_strategy
    evaluator = evaluator or space_entry.default_evaluator
    strat_entry, eval_entry = registry.strategy(strategy), registry.evaluator(evaluator)
    registry.check_compatible(space, strat_entry, "strategy")
    registry.check_compatible(space, eval_entry, "evaluator")
    limits = asdict(budget(values))  # a bad budget fails here, before any object is built
    return RunConfig(space, strategy, evaluator,
                     options.to_dict(options.build(space_entry.config, values, where)),
                     options.to_dict(options.build(strat_entry.config, values, where)),
                     options.to_dict(options.build(eval_entry.config, values, where)), seed=values.get("seed", 0),
                     budget=limits, backend=values.get("backend", "local"), workers=values.get("workers", 1),
                     device=values.get("device", "auto"), extra=extra,
                     plugins=tuple(dict.fromkeys([*registry.builtin_plugins(),
                                                  *registry.modules_of(space, strategy, evaluator)])))
