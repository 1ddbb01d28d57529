"""A live view of runs in the browser: optuna-dashboard over a read-only mirror of each run's trials.

Each run becomes one Optuna study in an in-memory storage (study name = the run's folder name,
directions and metric names = the run's objectives). Each searchlab trial becomes one Optuna trial:
state WAITING/RUNNING/COMPLETE/FAIL for asked/running/done/failed, values = its objectives, params = the
genome's short fields, user attributes = key, genome JSON, costs, error. A thread re-reads every run
every few seconds through a read-only SQLite connection that writes nothing and creates no file in the
run (safe while a search writes it; a finished run is left exactly as it was) and adds only what changed.
The web server answers GET only and the page offers nothing it would refuse (searchlab/output/dashboard_view.py),
so the view cannot drift from the runs. Needs the `dashboard` extra (optuna, optuna-dashboard).
"""

from __future__ import annotations

import json
import math
import socket
import socketserver
import sys
import threading
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from searchlab.output.dashboard_view import view_app
from searchlab.errors import ConfigError, SearchlabError
from searchlab.objectives import sign
from searchlab.store.run_store import STORE_NAME, Trial
from searchlab.store.run_view import RunView

INSTALL_HINT = "pip install 'searchlab[dashboard]'"
MAX_PARAMS = 32          # more short genome fields than this and the genome is shown as user attribute only
MAX_LIST_ITEMS = 16    # a longer list (a mask) is not shown item by item
MAX_GENOME_CHARS = 2000  # the genome JSON shown per trial; `searchlab trials RUN --json` has it whole


def require_optuna():
    """optuna and optuna_dashboard, or a one-line ConfigError saying how to install them."""
    try:
        import optuna
        import optuna_dashboard
    except ImportError as exc:
        raise ConfigError(f"the dashboard needs optuna and optuna-dashboard ({exc.name} is missing): "
                          f"{INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna, optuna_dashboard


def short_fields(genome: Any) -> dict[str, Any]:
    """The genome's scalar fields by name (`ops[1]`, `genome[0]`): its scalars, and the items of its short
    flat lists; masks, matrices and other long or nested values are left out (they stay in `genome`)."""
    def flat(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, (dict, list)):
            return {name: value}
        if isinstance(value, list) and len(value) <= MAX_LIST_ITEMS and \
                not any(isinstance(v, (dict, list)) for v in value):
            return {f"{name}[{i}]": v for i, v in enumerate(value)}
        return {}

    if isinstance(genome, dict):
        return {k: v for name, value in genome.items() for k, v in flat(str(name), value).items()}
    if isinstance(genome, list) and len(genome) <= MAX_PARAMS:
        return {f"genome[{i}]": v for i, v in enumerate(genome) if not isinstance(v, (dict, list))}
    return flat("genome", genome)


def _params(genome: Any):
    """Optuna params and distributions of the genome's short fields (each distribution is the value
    itself; optuna-dashboard joins them into ranges and choices across trials)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    fields = short_fields(genome)
    if len(fields) > MAX_PARAMS:
        return {}, {}
    params, dists = {}, {}
    for name, value in fields.items():
        if isinstance(value, bool) or value is None or isinstance(value, str):
            dists[name] = CategoricalDistribution([value])
        elif isinstance(value, int):
            dists[name] = IntDistribution(value, value)
        elif isinstance(value, float) and math.isfinite(value):
            dists[name] = FloatDistribution(value, value)
        else:
            continue
        params[name] = value
    return params, dists


def _when(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp) if stamp is not None else None


class RunMirror:
    """One run mirrored into one Optuna study; `refresh` adds new trials and updates changed ones."""

    def __init__(self, run_dir: str | Path, storage, study_name: str | None = None) -> None:
        optuna, _ = require_optuna()
        self.run_dir = Path(run_dir)
        with RunView.open(self.run_dir, read_only=True) as run:  # missing or damaged: the store's one-line error
            config = run.config
        self.objectives: dict[str, str] = dict(config.get("objectives") or {"value": "max"})
        self.study_name = study_name or self.run_dir.resolve().name
        directions = [optuna.study.StudyDirection.MAXIMIZE if sign(m) > 0 else optuna.study.StudyDirection.MINIMIZE
                      for m in self.objectives.values()]
        self.storage = storage
        self.study_id = storage.create_new_study(directions, study_name=self.study_name)
        with warnings.catch_warnings():  # set_metric_names is marked experimental
            warnings.simplefilter("ignore")
            optuna.load_study(study_name=self.study_name, storage=storage).set_metric_names(list(self.objectives))
        storage.set_study_user_attr(self.study_id, "run", str(self.run_dir.resolve()))
        storage.set_study_user_attr(self.study_id, "space", config.get("space"))
        storage.set_study_user_attr(self.study_id, "strategy", config.get("strategy"))
        self._trial_ids: dict[int, int] = {}   # searchlab trial id -> Optuna trial id
        self._states: dict[int, str] = {}      # searchlab state last mirrored, for trials not yet finished
        self._last = 0

    @property
    def trial_count(self) -> int:
        return len(self._trial_ids)

    def refresh(self) -> int:
        """Read the trials added or changed since the last refresh; returns how many were mirrored."""
        since = (min(self._states) - 1) if self._states else self._last
        changed = 0
        with RunView.read_only(self.run_dir) as run:
            for t in run.trials(since):
                if t.id not in self._trial_ids:
                    self._add(t)
                elif self._states.get(t.id) not in (None, t.state):
                    self._update(t)
                else:
                    continue
                changed += 1
                self._last = max(self._last, t.id)
        return changed

    # ---------------------------------------------------------------- one trial
    def _state_values(self, t: Trial):
        from optuna.trial import TrialState

        if t.state in ("asked", "running"):
            return (TrialState.WAITING if t.state == "asked" else TrialState.RUNNING), None, None
        if t.state == "failed" or t.result is None:
            return TrialState.FAIL, None, None
        values = [t.result.objectives.get(name) for name in self.objectives]
        missing = [n for n, v in zip(self.objectives, values) if v is None or not math.isfinite(v)]
        if missing:  # Optuna needs every value of a complete trial
            return TrialState.FAIL, None, f"done, but without a finite {', '.join(missing)}"
        return TrialState.COMPLETE, [float(v) for v in values], None

    def _user_attrs(self, t: Trial, note: str | None) -> dict:
        genome = json.dumps(t.genome, separators=(",", ":"))
        if len(genome) > MAX_GENOME_CHARS:
            genome = genome[:MAX_GENOME_CHARS] + f" ... (whole: searchlab trials {self.run_dir} --json)"
        attrs: dict[str, Any] = {"trial": t.id, "key": t.key}
        if t.result is not None and t.result.error:
            attrs["error"] = t.result.error
        if note:
            attrs["note"] = note
        if t.cached_from is not None:
            attrs["cached_from"] = t.cached_from
        if t.result is not None:
            attrs.update({f"cost_{k}": v for k, v in t.result.cost.items()})
        attrs["genome"] = genome
        if t.worker:
            attrs["worker"] = t.worker
        return attrs

    def _add(self, t: Trial) -> None:
        from optuna.trial import FrozenTrial

        state, values, note = self._state_values(t)
        params, dists = _params(t.genome)
        template = FrozenTrial(number=-1, state=state, value=None, values=values,
                               datetime_start=_when(t.started or t.created), datetime_complete=_when(t.finished),
                               params=params, distributions=dists, user_attrs=self._user_attrs(t, note),
                               system_attrs={}, intermediate_values={}, trial_id=-1)
        self._trial_ids[t.id] = self.storage.create_new_trial(self.study_id, template_trial=template)
        if not state.is_finished():
            self._states[t.id] = t.state

    def _update(self, t: Trial) -> None:
        state, values, note = self._state_values(t)
        trial_id = self._trial_ids[t.id]
        for k, v in self._user_attrs(t, note).items():  # before the state: a finished trial is frozen
            self.storage.set_trial_user_attr(trial_id, k, v)
        self.storage.set_trial_state_values(trial_id, state, values)
        if state.is_finished():
            del self._states[t.id]
        else:
            self._states[t.id] = t.state


class Mirror:
    """Several runs, one study each, in one in-memory Optuna storage."""

    def __init__(self, run_dirs: list[str | Path]) -> None:
        optuna, _ = require_optuna()
        if not run_dirs:
            raise ConfigError("name at least one run directory")
        self.storage = optuna.storages.InMemoryStorage()
        names = [Path(d).resolve().name for d in run_dirs]
        self.runs: list[RunMirror] = []
        for d, name in zip(run_dirs, names):
            if any(r.run_dir.resolve() == Path(d).resolve() for r in self.runs):
                continue
            # two runs in folders of the same name are told apart by the path as given
            self.runs.append(RunMirror(d, self.storage, name if names.count(name) == 1 else str(d)))

    def refresh(self) -> dict[str, int]:
        """Mirror what changed in every run: {study name: trials added or updated}."""
        return {r.study_name: r.refresh() for r in self.runs}


# -------------------------------------------------------------------- the web server
class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser keeps connections open; they must not hold up a stop


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # one line per request would drown the terminal
        pass


def wait_for_runs(run_dirs: list[str | Path], timeout: float, say=print, poll: float = 0.5) -> None:
    """Wait up to `timeout` seconds for runs that do not exist yet (a search started at the same time is
    creating them), saying once what it waits for; a run still missing then is the store's one-line error
    when the dashboard opens it. Ctrl-C stops the wait (KeyboardInterrupt)."""
    def missing() -> list[Path]:
        return [Path(d) for d in run_dirs if not Path(d).is_file() and not (Path(d) / STORE_NAME).exists()]

    if not timeout >= 0 or math.isinf(timeout):
        raise ConfigError(f"--wait must be a number of seconds, 0 or more (0: do not wait), got {timeout}")
    waiting = missing()
    if not waiting or timeout == 0:
        return
    say(f"waiting up to {timeout:g}s for {', '.join(map(str, waiting))} to be created by its search "
        f"(Ctrl-C stops; --wait sets how long)", flush=True)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        waiting = missing()
    if waiting:
        raise ConfigError(f"{waiting[0]} was not created within {timeout:g}s: check the path (the directory given "
                          f"to --run), or wait longer with --wait SECONDS")


class Dashboard:
    """optuna-dashboard over a Mirror, with a thread refreshing it every `refresh` seconds."""

    def __init__(self, run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 8080,
                 refresh: float = 5.0) -> None:
        _, optuna_dashboard = require_optuna()
        if not refresh > 0:
            raise ConfigError(f"--refresh must be a positive number of seconds, got {refresh}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be 0 to 65535 (0 = any free port), got {port}")
        self.mirror = Mirror(run_dirs)
        self.mirror.refresh()
        self.refresh_seconds = refresh
        try:
            self.server = make_server(host, port, view_app(optuna_dashboard.wsgi(self.mirror.storage),
                                                           self.mirror.storage),
                                      server_class=_Server, handler_class=_QuietHandler)
        except socket.gaierror as exc:
            raise ConfigError(f"--host {host}: {exc.strerror}; pass an address such as 127.0.0.1") from None
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; pass another --port "
                              f"(0 picks a free one)") from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="searchlab-dashboard-refresh", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/dashboard"

    def _refresh_loop(self) -> None:
        last_error = None
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.mirror.refresh()
                last_error = None
            except SearchlabError as exc:  # a run damaged meanwhile: say so once, keep showing what was read
                if str(exc) != last_error:
                    print(f"warning: {exc}", file=sys.stderr, flush=True)
                last_error = str(exc)

    def serve_forever(self) -> None:
        self._thread.start()
        try:
            self.server.serve_forever(poll_interval=0.5)
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self.server.server_close()
