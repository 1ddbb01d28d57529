"""Build a run's space, strategy and evaluator from its stored JSON configuration.

The driver and every worker process call these same functions, so a run is rebuilt identically on
resume and on any backend.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from searchlab import options, registry
from searchlab.errors import SearchlabError
from searchlab.protocols import Context, Result


def build_space(config: dict, ctx: Context) -> Any:
    entry = registry.space(config["space"])
    return entry.factory(options.build(entry.config, config.get("space_config", {}), f"{entry.name} options",
                                         stored=True), ctx)


def build_evaluator(space: Any, config: dict, ctx: Context) -> Any:
    entry = registry.evaluator(config["evaluator"])
    registry.check_compatible(config["space"], entry, "evaluator")
    cfg = options.build(entry.config, config.get("evaluator_config", {}), f"{entry.name} evaluator options",
                        stored=True)
    return entry.factory(space, cfg, ctx)


def build_strategy(space: Any, config: dict, objectives: dict[str, str], seed: int) -> Any:
    entry = registry.strategy(config["strategy"])
    registry.check_compatible(config["space"], entry, "strategy")
    cfg = options.build(entry.config, config.get("strategy_config", {}), f"{entry.name} strategy options",
                        stored=True)
    return entry.factory(space, cfg, seed=seed, objectives=objectives)


def evaluate_safely(evaluator: Any, genome: Any, seed: int, device: str) -> Result:
    """Evaluate one genome; any exception becomes a failed Result so the search goes on."""
    start = time.perf_counter()
    try:
        result = evaluator.evaluate(genome, seed=seed, device=device)
    except SearchlabError as exc:
        result = Result.failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - failure isolation is the point
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
        result = Result.failed(f"{type(exc).__name__}: {exc}{where}")
    if "seconds" not in result.cost:
        result = Result(result.status, result.objectives, {**result.cost, "seconds": time.perf_counter() - start},
                        result.error)
    return result
