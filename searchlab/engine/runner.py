# Just over 400 lines: ask, evaluate, tell and record form one loop whose order is the resume contract.
"""The run loop: ask, record `asked`, evaluate, tell in trial order, record result + snapshot.

Determinism: trial j is asked only once trials up to j - W have been told (W = the run's window,
its `workers` at creation), and results reach the strategy in trial order. So the sequence of
ask/tell calls, and with it every trial, depends only on the seed, whatever order evaluations
finish in. Resume reloads the last snapshot and re-runs the same loop; trials already in the store
are reused (asked genomes are checked to match, finished results are replayed), unfinished ones are
evaluated again with the same per-trial seed.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from searchlab import __version__, io, registry
from searchlab.engine.assembly import build_evaluator, build_space, build_strategy
from searchlab.engine.backends import LocalBackend, ProcessBackend, default_devices
from searchlab.errors import ConfigError, InvalidArchitecture, RunStoreError
from searchlab.objectives import best_trial
from searchlab.protocols import Context, Result
from searchlab.store.run_store import RunStore, Snapshot, Trial
from searchlab.store.run_view import RunView
from searchlab.engine.seeding import trial_seed

MAX_CONSECUTIVE_REPEATS = 10_000
# The store grows with evaluations, not with proposals: once more than this many proposals per evaluated
# candidate (and at least REPEATS_ALLOWED) were answered from the store, the strategy is only re-proposing
# what it has seen, and the run ends with the reason "repeating" (resumable, like any stop).
REPEATS_PER_EVALUATION = 10
REPEATS_ALLOWED = 1_000


@dataclass(frozen=True)
class Budget:
    """Limits checked between trials; None means unlimited."""

    max_evals: int | None = None
    max_time: float | None = None
    max_epochs: float | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None:
                continue
            flag = f"--{name.replace('_', '-')}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{flag} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{flag} must be positive, got {value}")
            if name == "max_evals" and value != int(value):
                raise ConfigError(f"{flag} must be a whole number of evaluations, got {value}")

    def merged(self, override: "Budget | None") -> "Budget":
        if override is None:
            return self
        return Budget(**{k: (v if v is not None else getattr(self, k)) for k, v in asdict(override).items()})


@dataclass(frozen=True)
class Outcome:
    """Why a run loop ended (budget name, "finished", "exhausted", "repeating", "interrupted") and what it did."""

    reason: str
    told: int
    evaluated: int
    best: dict | None


def package_versions() -> dict:
    versions = {"searchlab": __version__, "python": platform.python_version()}
    for name in ("torch", "numpy", "deap", "networkx", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    versions.update(source_commit())
    return versions


def source_commit() -> dict:
    """The git commit of searchlab's source tree (and whether it had uncommitted changes), when it is a
    git checkout: part of a run's reproducibility record."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return {}
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_engine_options(*, seed: Any, workers: Any, backend: Any, device: Any) -> None:
    """The engine's own options, checked the same wherever they come from (flag, config file, Python)."""
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must be a whole number from 0 to 2^63 - 1, got {seed!r}")
    if not _is_int(workers) or workers < 1:
        raise ConfigError(f"--workers must be a whole number >= 1, got {workers!r}")
    if backend not in ("local", "processes", "ray"):
        raise ConfigError(f"unknown backend {backend!r}; choose local, processes or ray")
    if backend == "local" and workers > 1:
        raise ConfigError("the local backend runs one trial at a time; use --backend processes for --workers > 1")
    if not isinstance(device, str) or not device:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


def create_run(run_dir: str | Path, *, space: str, strategy: str, evaluator: str, space_config: dict,
               strategy_config: dict, evaluator_config: dict, seed: int, budget: Budget, backend: str = "local",
               workers: int = 1, device: str = "auto", plugins: list[str] = (), extra: dict | None = None) -> RunStore:
    """Validate the configuration by building every object once, then create the run store."""
    check_engine_options(seed=seed, workers=workers, backend=backend, device=device)
    used = registry.modules_of(space, strategy, evaluator)  # resume loads these again (or names them)
    config = {"space": space, "strategy": strategy, "evaluator": evaluator, "space_config": space_config,
              "strategy_config": strategy_config, "evaluator_config": evaluator_config, "budget": asdict(budget),
              "backend": backend, "workers": int(workers), "window": int(workers), "device": device,
              "plugins": list(dict.fromkeys([*plugins, *used])), **(extra or {})}
    run_dir = Path(run_dir)
    new_dir = not run_dir.exists()
    ctx = Context(run_dir=run_dir, seed=seed, device=device)
    try:
        space_obj = build_space(config, ctx)
        evaluator_obj = build_evaluator(space_obj, config, ctx)
        config["objectives"] = dict(evaluator_obj.objectives)
        build_strategy(space_obj, config, config["objectives"], seed)
        return RunStore.create(run_dir, config, seed, package_versions())
    except BaseException:
        if new_dir and run_dir.is_dir() and not any(run_dir.iterdir()):  # no run was created: leave no empty folder
            run_dir.rmdir()
        raise


class _Loop:
    """State of one session of the run loop (see the module docstring)."""

    def __init__(self, store: RunStore, config: dict, budget: Budget, backend: Any, strategy: Any, space: Any,
                 progress: Callable[[dict], None] | None):
        self.store, self.config, self.budget = store, config, budget
        self.backend, self.strategy, self.space, self.progress = backend, strategy, space, progress
        self.window = int(config.get("window", config.get("workers", 1)))
        self.seed = store.seed
        self.objectives = config.get("objectives", {})
        self.rows: dict[int, Trial] = {t.id: t for t in store.trials()}
        self.key_first: dict[str, int] = {}
        self.results: dict[int, Result] = {}
        for t in self.rows.values():
            self.key_first.setdefault(t.key, t.id)
            if t.result is not None:
                self.results[t.id] = t.result
        snap = store.last_snapshot()
        if snap is not None:
            try:
                strategy.load_state_dict(snap.state)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:  # a state it never wrote
                raise RunStoreError(f"{store.path}: the stored strategy snapshot is damaged ({type(exc).__name__}: "
                                    f"{str(exc)[:120]}); restore the run from a copy") from None
        self.next_tell = (snap.told_through if snap else 0) + 1
        self.next_id = (snap.asked_through if snap else 0) + 1
        self.genomes: dict[int, Any] = {i: self.rows[i].genome for i in range(self.next_tell, self.next_id)}
        self.dispatched: set[int] = set()
        self.elapsed_before = store.elapsed
        self.session_start = time.monotonic()
        self.repeats = 0
        self.evaluated = sum(1 for t in self.rows.values() if t.cached_from is None and t.id < self.next_id)
        self.answered = sum(1 for t in self.rows.values() if t.cached_from is not None and t.id < self.next_id)
        self.used_epochs = sum(r.cost.get("epochs", 0.0) for i, r in self.results.items() if i < self.next_tell)
        self.used_cost = sum(r.cost.get("simulated_seconds", 0.0) for i, r in self.results.items() if i < self.next_tell)
        self.best = best_trial([t for t in self.rows.values() if t.id < self.next_tell], self.objectives)

    def elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.session_start)

    def budget_reason(self) -> str | None:
        b = self.budget
        if b.max_time is not None and self.elapsed() >= b.max_time:
            return "max_time"
        if b.max_epochs is not None and self.used_epochs >= b.max_epochs:
            return "max_epochs"
        if b.max_cost is not None and self.used_cost >= b.max_cost:
            return "max_cost"
        if b.max_evals is not None and self.evaluated >= b.max_evals:
            return "max_evals"
        return None

    def ask_one(self) -> bool:
        """Ask the strategy for trial `next_id`; False when it has nothing to offer right now."""
        genomes = self.strategy.ask(1)
        if not genomes:
            return False
        trial_id = self.next_id
        try:
            genome = self.space.validate(genomes[0])
            key = self.space.key(genome)
        except InvalidArchitecture as exc:  # a strategy bug must not end the search
            genome, key = genomes[0], f"invalid:{trial_id}"
            self.results.setdefault(trial_id, Result.failed(f"invalid architecture: {exc}"))
        stored = self.rows.get(trial_id)
        if stored is not None:
            if stored.key != key:
                raise RunStoreError(
                    f"trial {trial_id} was stored with key {stored.key} but the strategy now proposes {key}; the "
                    f"strategy is not deterministic for its state, so this run cannot be resumed exactly")
        else:
            first = self.key_first.get(key)
            self.store.add_trial(trial_id, key, genome, trial_seed(self.seed, trial_id), cached_from=first)
            self.rows[trial_id] = Trial(trial_id, key, genome, "asked", trial_seed(self.seed, trial_id), None,
                                        None, None, first, time.time(), None, None)
            self.key_first.setdefault(key, trial_id)
        row = self.rows[trial_id]
        self.genomes[trial_id] = genome
        if row.cached_from is None:
            self.evaluated += 1
        else:
            self.answered += 1
        self.next_id += 1
        return True

    def repeating(self) -> bool:
        """Whether the strategy has been answered from the store too often to go on (see REPEATS_PER_EVALUATION)."""
        return (self.repeats > MAX_CONSECUTIVE_REPEATS
                or self.answered > max(REPEATS_ALLOWED, REPEATS_PER_EVALUATION * self.evaluated))

    def dispatch(self) -> None:
        for trial_id in range(self.next_tell, self.next_id):
            row = self.rows[trial_id]
            if trial_id in self.dispatched or trial_id in self.results or row.cached_from is not None:
                continue
            worker, device = self.backend.placement(trial_id)
            self.store.mark_running(trial_id, worker, device)
            self.backend.submit(trial_id, row.genome, row.seed)
            self.dispatched.add(trial_id)

    def result_of(self, trial_id: int) -> Result:
        row = self.rows[trial_id]
        if row.cached_from is not None:
            original = self.results[row.cached_from]
            return Result(original.status, original.objectives, {}, original.error)
        while trial_id not in self.results:
            for tid, result, _worker, _device in self.backend.wait():
                self.results[tid] = result
        return self.results[trial_id]

    def tell_next(self) -> None:
        trial_id = self.next_tell
        result = self.result_of(trial_id)
        self.results[trial_id] = result
        self.strategy.tell(self.genomes.pop(trial_id), result)
        snapshot = Snapshot(trial_id, self.next_id - 1, self.strategy.state_dict())
        row = self.rows[trial_id]
        if row.result is None:
            self.store.finish_trial(trial_id, result, snapshot, self.elapsed())
        else:
            self.store.save_snapshot(snapshot, self.elapsed())
        self.rows[trial_id] = Trial(row.id, row.key, row.genome, "done" if result.ok else "failed", row.seed,
                                    result, row.worker, row.device, row.cached_from, row.created, row.started,
                                    time.time())
        self.used_epochs += result.cost.get("epochs", 0.0)
        self.used_cost += result.cost.get("simulated_seconds", 0.0)
        self.repeats = self.repeats + 1 if row.cached_from is not None else 0
        self.best = best_trial([b for b in (self.best, self.rows[trial_id]) if b is not None], self.objectives)
        self.next_tell += 1
        if self.progress:
            self.progress({"told": trial_id, "evaluated": self.evaluated, "best": self.best,
                           "elapsed": self.elapsed()})

    def run(self) -> str:
        while True:
            reason = self.budget_reason()
            if reason == "max_time":
                return reason
            asked_nothing = False
            while reason is None and self.next_id - self.next_tell < self.window:
                if self.strategy.finished() or self.repeating():
                    break
                if not self.ask_one():
                    asked_nothing = True
                    break
                reason = self.budget_reason()
            self.dispatch()
            if self.next_tell == self.next_id:
                if reason is not None:
                    return reason
                if self.strategy.finished():
                    return "finished"
                if self.repeating():
                    return "repeating"
                if asked_nothing:
                    return "exhausted"
                continue
            self.tell_next()


def run(run_dir: str | Path, *, plugins: list[str] = (), budget: Budget | None = None, workers: int | None = None,
        backend: str | None = None, progress: Callable[[dict], None] | None = None, verbose: bool = False,
        overrides: dict | None = None) -> Outcome:
    """Run (or resume) the run in `run_dir` until a budget, the strategy's end or an interrupt.

    `overrides` replaces stored backend settings (e.g. `ray_address`, `gpus_per_trial`) from now on.
    """
    store = RunStore.open(run_dir)
    store.lock()
    try:
        config = store.config
        new_budget = Budget(**config["budget"]).merged(budget)
        changed = dict(config, budget=asdict(new_budget))
        if workers is not None:
            changed["workers"] = int(workers)
        if backend is not None:
            changed["backend"] = backend
        changed.update(overrides or {})
        stored, config = config, changed
        modules = list(plugins) + registry.trusted_plugins(config.get("plugins", []), plugins)
        registry.load_plugins(modules)
        devices = default_devices(config.get("device", "auto"))
        ctx = Context(run_dir=Path(run_dir), seed=store.seed, device=devices[0], verbose=verbose)
        space = build_space(config, ctx)
        objectives = config.get("objectives") or {}
        strategy = build_strategy(space, config, objectives, store.seed)
        backend_obj = _make_backend(config, space, ctx, modules, devices)
        loop = _Loop(store, config, new_budget, backend_obj, strategy, space, progress)
        if config != stored:  # only once the run has been read back whole and its plug-ins checked
            store.update_config(config)
        try:
            reason = loop.run()
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            backend_obj.close()
        best = loop.best.to_json() if loop.best else None
        return Outcome(reason, loop.next_tell - 1, loop.evaluated, best)
    finally:
        store.close()


def _make_backend(config: dict, space: Any, ctx: Context, plugins: list[str], devices: list[str]) -> Any:
    kind = config.get("backend", "local")
    workers = int(config.get("workers", 1))
    if kind == "local":
        if workers != 1:
            raise ConfigError("the local backend runs one trial at a time; use --backend processes for --workers > 1")
        return LocalBackend(build_evaluator(space, config, ctx), devices[0])
    if kind == "processes":
        return ProcessBackend(workers, plugins, config, ctx.run_dir, ctx.seed, devices)
    if kind == "ray":
        from searchlab.engine.ray_backend import RayBackend
        return RayBackend(workers, plugins, config, ctx.run_dir, ctx.seed)
    raise ConfigError(f"unknown backend {kind!r}; choose local, processes or ray")


FINAL_RECORD = "finalized.json"  # the last final step's summary and how many trials it saw


def finalize(run_dir: str | Path, *, plugins: list[str] = (), verbose: bool = False,
             again: bool = False) -> dict | None:
    """Run the final step (rebuild and fine-tune the best, write reports): the evaluator's, else the space's.

    Its summary is recorded in RUN/finalized.json; while the run has no new trial, a later call returns
    that record (with "reused": true) instead of training and writing the same outputs again, unless
    `again`.
    """
    run_dir = Path(run_dir)
    store = RunStore.open(run_dir)
    try:
        config = store.config
        registry.load_plugins(list(plugins) + registry.trusted_plugins(config.get("plugins", []), plugins))
        step = registry.evaluator(config["evaluator"]).finalize or registry.space(config["space"]).finalize
        if step is None:
            return None
        trials = store.trials()
        best = best_trial(trials, config.get("objectives", {}))
        if best is None:
            return None
        told = sum(t.result is not None for t in trials)
        record = _read_final_record(run_dir)
        if not again and record is not None and record.get("told") == told:
            return {**record["summary"], "reused": True}
        devices = default_devices(config.get("device", "auto"))
        ctx = Context(run_dir=run_dir, seed=store.seed, device=devices[0], verbose=verbose)
        space = build_space(config, ctx)
        evaluator = build_evaluator(space, config, ctx)
        ctx = replace(ctx, run=RunView(store))
        summary = step(space, evaluator, {"id": best.id, "key": best.key, "genome": best.genome,
                                                    "result": best.result}, ctx)
    finally:
        store.close()
    if summary is not None:
        io.write_text(run_dir / FINAL_RECORD, json.dumps({"told": told, "summary": summary}, default=str,
                                                         allow_nan=True))
    return summary


def _read_final_record(run_dir: Path) -> dict | None:
    try:
        record = io.parse_json((run_dir / FINAL_RECORD).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("summary"), dict) else None
