"""A read-only view of a run: what final steps, reports, `status`, the dashboard and the Python API read.

Readers never write a run; only the run loop does (through `RunStore`, whose contract is written in
docs/engine.md, "The run store"). A view gives them the run as it stands: configuration, trials, the
best trial, the budget used, the strategy's last saved state and the run folder for outputs. What a
reader may assume after a kill: every trial it sees as done or failed is final, and the strategy state
is the one saved with the last of them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from searchlab.errors import ConfigError
from searchlab.objectives import best_trial
from searchlab.store.run_store import STORE_NAME, RunStore, Trial, read_only_uri


class RunView:
    """Read-only access to one run's store."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    @classmethod
    @contextlib.contextmanager
    def open(cls, run_dir: str | Path, read_only: bool = False) -> Iterator["RunView"]:
        """The run at `run_dir`, checked as the store checks it (a missing or damaged run: one-line error);
        `read_only`: without writing to the run or creating any file in it (run_store.read_only_uri)."""
        with RunStore.open(run_dir, read_only=read_only) as store:
            yield cls(store)

    @classmethod
    @contextlib.contextmanager
    def read_only(cls, run_dir: str | Path) -> Iterator["RunView"]:
        """The run through a connection SQLite opens read-only, unchecked (for re-reading a run already opened):
        it cannot write, never checkpoints the write-ahead log and creates no file in the run, so a search
        writing the run meanwhile is undisturbed and a finished run is left as it was (run_store.read_only_uri)."""
        run_dir = Path(run_dir)
        uri = read_only_uri(run_dir / STORE_NAME)
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"cannot read {run_dir / STORE_NAME}: {exc}") from None
        store = RunStore(run_dir, conn)
        store.read_only = True
        try:
            yield cls(store)
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"cannot read {run_dir / STORE_NAME}: {exc}") from None
        finally:
            conn.close()

    # what the run is ---------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """The run folder: where final steps write their outputs."""
        return self._store.run_dir

    @property
    def config(self) -> dict:
        return self._store.config

    @property
    def objectives(self) -> dict[str, str]:
        return dict(self.config.get("objectives") or {})

    @property
    def seed(self) -> int:
        return self._store.seed

    @property
    def created(self) -> float:
        return self._store.created

    @property
    def versions(self) -> dict:
        return self._store.versions

    @property
    def read_only_storage(self) -> bool:
        return bool(getattr(self._store, "read_only", False))

    # what it holds -----------------------------------------------------------------------------------
    def trials(self, since: int = 0) -> list[Trial]:
        """Every trial with id > `since`, in order."""
        return self._store.trials(since)

    def evaluated(self) -> list[Trial]:
        """Trials evaluated for this run (not answered from the store) that succeeded."""
        return [t for t in self.trials() if t.cached_from is None and t.result is not None and t.result.ok]

    def counts(self) -> dict[str, int]:
        return self._store.count_trials()

    def best(self) -> Trial | None:
        """The finished trial with the best primary objective (ties: the earliest)."""
        return best_trial(self.trials(), self.objectives)

    def budget_used(self) -> dict[str, float]:
        """What the run has spent of each budget: evaluations, seconds, epochs, simulated cost."""
        trials = self.trials()
        told = [t for t in trials if t.result is not None]
        return {"max_evals": sum(1 for t in trials if t.cached_from is None), "max_time": self._store.elapsed,
                "max_epochs": sum(t.result.cost.get("epochs", 0.0) for t in told),
                "max_cost": sum(t.result.cost.get("simulated_seconds", 0.0) for t in told)}

    def strategy_state(self) -> Any:
        """The strategy's last saved state (JSON), or None before the first tell."""
        snapshot = self._store.last_snapshot()
        return snapshot.state if snapshot is not None else None
