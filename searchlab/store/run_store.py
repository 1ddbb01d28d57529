# Over 400 lines on purpose: every write and every checked read of the run file in one place (DESIGN.md, "A run").
"""The run store: one SQLite file (WAL mode) that is the single source of truth of a run.

Tables (see DESIGN.md, "A run"): `meta` (schema version), `run` (resolved configuration),
`trials` (one row per asked candidate), `snapshots` (strategy state after a tell) and `progress`
(wall-clock seconds used). A trial is inserted as `asked` before it is evaluated, and written
`done`/`failed` in the same transaction as the strategy snapshot that follows its tell, so a
process killed at any instant leaves a consistent store. WAL with synchronous=NORMAL survives a
killed process; pass `durable=True` for fsync on every commit (survives power loss too).

Everything read back is checked for its type (text columns are read as bytes and decoded here, so a
flipped byte is a one-line "damaged" error naming the file and the row, never an sqlite3 error).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from searchlab import io
from searchlab.errors import RunStoreError
from searchlab.protocols import Result
from searchlab.store.stored_values import config_problem, not_text, schema_version, stored_result

SCHEMA_VERSION = 1
STORE_NAME = "run.sqlite"
LOCK_NAME = "run.lock"
SQLITE_HEADER = b"SQLite format 3\x00"
KEEP_SNAPSHOTS = 3

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE run (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL, seed INTEGER NOT NULL,
                  versions TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE trials (id INTEGER PRIMARY KEY, key TEXT NOT NULL, genome TEXT NOT NULL,
                     state TEXT NOT NULL CHECK (state IN ('asked', 'running', 'done', 'failed')),
                     seed INTEGER NOT NULL, result TEXT, cost TEXT, worker TEXT, device TEXT,
                     cached_from INTEGER, created REAL NOT NULL, started REAL, finished REAL);
CREATE INDEX trials_key ON trials (key);
CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, told_through INTEGER NOT NULL,
                        asked_through INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE progress (id INTEGER PRIMARY KEY CHECK (id = 1), elapsed REAL NOT NULL);
"""


@dataclass(frozen=True)
class Trial:
    """One row of `trials`; `result` is None until the trial is told."""

    id: int
    key: str
    genome: Any
    state: str
    seed: int
    result: Result | None
    worker: str | None
    device: str | None
    cached_from: int | None
    created: float
    started: float | None
    finished: float | None

    def to_json(self) -> dict:
        return {"id": self.id, "key": self.key, "genome": self.genome, "state": self.state, "seed": self.seed,
                "result": self.result.to_json() if self.result else None, "worker": self.worker,
                "device": self.device, "cached_from": self.cached_from, "created": self.created,
                "started": self.started, "finished": self.finished}


@dataclass(frozen=True)
class Snapshot:
    told_through: int
    asked_through: int
    state: dict


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def read_only_uri(path: Path) -> str:
    """An SQLite URI that reads the store at `path` without writing it or creating any file beside it.

    `mode=ro` alone makes SQLite create `-shm` and `-wal` files for a store in WAL mode, and leave them.
    With no `-wal` file there, no search has the store open, so it is read as immutable (`immutable=1`:
    no locks, no side files). With one there, a search is writing it (or was killed): the reader uses
    the files that search made, and creates none. Storage you cannot write is always read as immutable.
    """
    writable = os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)
    wal = path.with_name(path.name + "-wal")
    immutable = not writable or not wal.exists()
    return f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"


class RunStore:
    """Read and write one run directory's `run.sqlite`. Use `create` or `open`, not the constructor."""

    def __init__(self, run_dir: Path, conn: sqlite3.Connection):
        self.run_dir = run_dir
        self.path = run_dir / STORE_NAME
        self._conn = conn
        conn.text_factory = bytes  # decoded by `_text`, which names the damaged row
        self._lock_fd: int | None = None
        self.read_only = False

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, run_dir: str | Path, config: dict, seed: int, versions: dict, durable: bool = False) -> "RunStore":
        """Create the run's store. The run's lock is held while it is written, and the finished file is
        linked into place (which fails if one appeared meanwhile), so of two processes creating the same
        run, one wins and the other gets a one-line error."""
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise RunStoreError(f"{run_dir} is a file, not a directory; pass a new directory to --run")
        if (run_dir / STORE_NAME).exists():
            raise RunStoreError(f"{run_dir} already holds a run; continue it with `searchlab resume {run_dir}` "
                                f"or pass another --run directory")
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunStoreError(f"{run_dir} is being created or run by another searchlab process; pass another "
                                    f"--run directory") from None
            final = run_dir / STORE_NAME
            if final.exists():
                raise RunStoreError(f"{run_dir} already holds a run; continue it with `searchlab resume {run_dir}` "
                                    f"or pass another --run directory")
            for stale in run_dir.glob(STORE_NAME + ".creating*"):  # left by a create that was killed
                stale.unlink(missing_ok=True)
            tmp = run_dir / f"{STORE_NAME}.creating.{os.getpid()}"
            try:
                conn = sqlite3.connect(tmp, isolation_level=None)
                conn.executescript(_SCHEMA)
                conn.execute("BEGIN")
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT INTO run VALUES (1, ?, ?, ?, ?)",
                             (_dumps(config), int(seed), _dumps(versions), time.time()))
                conn.execute("INSERT INTO progress VALUES (1, 0.0)")
                conn.execute("COMMIT")
                conn.close()
                with open(tmp, "rb+") as f:  # the store appears complete or not at all
                    os.fsync(f.fileno())
            except (sqlite3.OperationalError, OSError) as exc:
                tmp.unlink(missing_ok=True)
                raise RunStoreError(f"cannot create the run store in {run_dir}: {exc}; free space or pass another "
                                    f"--run directory") from None
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise RunStoreError(f"{run_dir} already holds a run; continue it with `searchlab resume {run_dir}` "
                                    f"or pass another --run directory") from None
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return cls.open(run_dir, durable=durable)

    @classmethod
    def open(cls, run_dir: str | Path, durable: bool = False, read_only: bool = False) -> "RunStore":
        """The run's store, checked. `read_only`: opened so that nothing is written to the run and no file is
        created beside its store (`read_only_uri`); runs on storage you cannot write are always opened so."""
        run_dir = Path(run_dir)
        if not run_dir.exists():
            raise RunStoreError(f"run directory {run_dir} does not exist; start a run with `searchlab search ... --run {run_dir}`")
        if not run_dir.is_dir():
            raise RunStoreError(f"{run_dir} is not a run directory (it is a file); pass the directory given to --run")
        path = run_dir / STORE_NAME
        if not path.exists():
            raise RunStoreError(f"{run_dir} holds no run store ({STORE_NAME} is missing); pass the directory given to --run")
        with open(path, "rb") as f:
            header = f.read(100)
        if len(header) < 100 or not header.startswith(SQLITE_HEADER):
            raise RunStoreError(f"{path} is not a searchlab run store (not an SQLite database, or truncated); "
                                f"it was left untouched")
        read_only = read_only or not os.access(run_dir, os.W_OK) or not os.access(path, os.W_OK)
        try:
            if read_only:  # read it as it is, write nothing
                conn = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None, timeout=30)
            else:
                conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.text_factory = bytes  # a damaged text column is reported below, not raised by sqlite3
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != b"ok":  # SQLite lists every problem, one per line: the first says enough
                raise sqlite3.DatabaseError(check.decode("utf-8", "replace").splitlines()[0][:200])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            tables = {t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in tables}
            if not {"meta", "run", "trials", "snapshots", "progress"} <= tables:
                conn.close()
                raise RunStoreError(f"{path} is an SQLite file but not a searchlab run store; it was left untouched")
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = schema_version(row[0]) if row else -1
            if conn.execute("SELECT COUNT(*) FROM run").fetchone()[0] != 1:
                raise sqlite3.DatabaseError("the run table has no configuration row")
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"{path} is corrupt ({exc}); it was left untouched — restore it from a copy "
                                f"or start a new run") from None
        if version is not None and version > SCHEMA_VERSION:
            conn.close()
            raise RunStoreError(f"{path} was written by a newer searchlab (store schema {version}, this version "
                                f"reads {SCHEMA_VERSION}); upgrade searchlab to continue this run")
        if version != SCHEMA_VERSION:
            conn.close()
            shown = version if version is not None else "(damaged)"
            raise RunStoreError(f"{path} has unknown store schema {shown}; it was left untouched")
        if read_only:
            store = cls(run_dir, conn)
            store.read_only = True
            return store
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        return cls(run_dir, conn)

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def lock(self) -> None:
        """Take the run's exclusive lock for this process's lifetime (released even on kill -9)."""
        if self.read_only:
            raise RunStoreError(f"run {self.run_dir} is on read-only storage (or not writable by you): status, report "
                                f"and trials can read it; copy it to writable storage to resume it")
        fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunStoreError(f"run {self.run_dir} is in use by another searchlab process; wait for it to end "
                                f"(or stop it) before resuming") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    # ---------------------------------------------------------------- run config
    def _damaged(self, what: str, exc: Exception) -> RunStoreError:
        return RunStoreError(f"{self.path}: the stored {what} is damaged ({type(exc).__name__}: {exc}); "
                             f"restore the run from a copy")

    def _json(self, text: Any, what: str, kind: type | None = None) -> Any:
        """Stored JSON decoded, or a RunStoreError naming what is damaged (bytes flipped inside the file)."""
        try:
            value = io.parse_json(text if isinstance(text, (bytes, str)) else not_text(text))
        except ValueError as exc:
            raise self._damaged(what, exc) from None
        if kind is not None and not isinstance(value, kind):
            raise self._damaged(what, TypeError(f"expected {kind.__name__}, found {type(value).__name__}"))
        return value

    def _text(self, value: Any, what: str, optional: bool = False) -> str | None:
        """A text column decoded as UTF-8 (the store only writes UTF-8), or a damaged-row error."""
        if value is None and optional:
            return None
        try:
            return value.decode("utf-8") if isinstance(value, bytes) else not_text(value)
        except ValueError as exc:
            raise self._damaged(what, exc) from None

    def _number(self, value: Any, what: str, kind: type = float, optional: bool = False) -> Any:
        """An INTEGER/REAL column as `kind`; text, blobs, NaN or a fraction where a whole number belongs
        are a damaged-row error."""
        if value is None and optional:
            return None
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            kind is float and isinstance(value, float) and math.isfinite(value))
        if not ok:
            shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            raise self._damaged(what, TypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                                f"found {shown!r:.40}"))
        return kind(value)

    def _run_row(self, column: str) -> Any:
        row = self._conn.execute(f"SELECT {column} FROM run WHERE id=1").fetchone()
        if row is None:
            raise self._damaged("run configuration", LookupError("the run row is missing"))
        return row[0]

    @property
    def config(self) -> dict:
        config = self._json(self._run_row("config"), "run configuration", dict)
        problem = config_problem(config)
        if problem:
            raise self._damaged("run configuration", TypeError(problem))
        return config

    @property
    def versions(self) -> dict:
        """Package versions (and the source's git commit) recorded when the run was created."""
        return self._json(self._run_row("versions"), "versions", dict)

    @property
    def seed(self) -> int:
        seed = self._number(self._run_row("seed"), "run seed", int)
        if not 0 <= seed < 2**63:
            raise self._damaged("run seed", ValueError(f"{seed} is outside 0 .. 2^63 - 1"))
        return seed

    @property
    def created(self) -> float:
        return self._number(self._run_row("created"), "creation time")

    def update_config(self, config: dict) -> None:
        with self._writing():
            self._conn.execute("UPDATE run SET config=? WHERE id=1", (_dumps(config),))

    @property
    def elapsed(self) -> float:
        row = self._conn.execute("SELECT elapsed FROM progress WHERE id=1").fetchone()
        if row is None:
            raise self._damaged("elapsed time", LookupError("the progress row is missing"))
        return self._number(row[0], "elapsed time")

    # ---------------------------------------------------------------- trials
    def add_trial(self, trial_id: int, key: str, genome: Any, seed: int, cached_from: int | None = None) -> None:
        with self._writing():
            self._conn.execute(
                "INSERT INTO trials (id, key, genome, state, seed, cached_from, created) VALUES (?, ?, ?, 'asked', ?, ?, ?)",
                (trial_id, key, _dumps(genome), seed, cached_from, time.time()))

    def mark_running(self, trial_id: int, worker: str, device: str) -> None:
        with self._writing():
            self._conn.execute("UPDATE trials SET state='running', worker=?, device=?, started=? WHERE id=? AND "
                               "state IN ('asked', 'running')", (worker, device, time.time(), trial_id))

    def finish_trial(self, trial_id: int, result: Result, snapshot: Snapshot | None, elapsed: float) -> None:
        """Record a told trial and the strategy snapshot after its tell, atomically."""
        state = "done" if result.ok else "failed"
        with self._transaction():
            self._conn.execute("UPDATE trials SET state=?, result=?, cost=?, finished=? WHERE id=?",
                               (state, _dumps(result.to_json()), _dumps(result.cost), time.time(), trial_id))
            if snapshot is not None:
                self._write_snapshot(snapshot)
            self._conn.execute("UPDATE progress SET elapsed=? WHERE id=1", (float(elapsed),))

    def save_snapshot(self, snapshot: Snapshot, elapsed: float) -> None:
        with self._transaction():
            self._write_snapshot(snapshot)
            self._conn.execute("UPDATE progress SET elapsed=? WHERE id=1", (float(elapsed),))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all; a full disk is a RunStoreError."""
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """SQLite's write errors (disk full, read-only, I/O) as one-line RunStoreErrors; what was committed
        before stays as it was."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise RunStoreError(f"cannot write to {self.path}: {exc}; free space (or make it writable) and resume "
                                f"the run: what was stored before is intact") from None

    def _write_snapshot(self, snapshot: Snapshot) -> None:
        cur = self._conn.execute(
            "INSERT INTO snapshots (told_through, asked_through, state, created) VALUES (?, ?, ?, ?)",
            (snapshot.told_through, snapshot.asked_through, _dumps(snapshot.state), time.time()))
        self._conn.execute("DELETE FROM snapshots WHERE id <= ?", (cur.lastrowid - KEEP_SNAPSHOTS,))

    def last_snapshot(self) -> Snapshot | None:
        row = self._conn.execute(
            "SELECT told_through, asked_through, state FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        told, asked = (self._number(v, "strategy snapshot", int) for v in row[:2])
        if not 0 <= told <= asked:
            raise self._damaged("strategy snapshot", ValueError(f"told through {told}, asked through {asked}"))
        return Snapshot(told, asked, self._json(row[2], "strategy snapshot", dict))

    def trials(self, since: int = 0) -> list[Trial]:
        return list(self.iter_trials(since))

    def iter_trials(self, since: int = 0) -> Iterator[Trial]:
        for row in self._conn.execute(
                "SELECT id, key, genome, state, seed, result, worker, device, cached_from, created, started, finished "
                "FROM trials WHERE id > ? ORDER BY id", (since,)):
            yield self._trial(row)

    def _trial(self, row: tuple) -> Trial:
        """One `trials` row, every column checked for its type."""
        trial_id = row[0]  # INTEGER PRIMARY KEY: always an integer
        where = f"trial {trial_id}"
        state = self._text(row[3], f"state of {where}")
        if state not in ("asked", "running", "done", "failed"):
            raise self._damaged(f"state of {where}", ValueError(f"unknown state {state!r:.40}"))
        result = None
        if row[5]:
            data = self._json(row[5], f"result of {where}", dict)
            try:
                result = stored_result(data)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._damaged(f"result of {where}", exc) from None
        cached_from = self._number(row[8], f"cached_from of {where}", int, optional=True)
        if cached_from is not None and not 0 < cached_from < trial_id:
            raise self._damaged(f"cached_from of {where}", ValueError(f"{cached_from} is not an earlier trial"))
        seed = self._number(row[4], f"seed of {where}", int)
        if not 0 <= seed < 2**63:
            raise self._damaged(f"seed of {where}", ValueError(f"{seed} is outside 0 .. 2^63 - 1"))
        return Trial(trial_id, self._text(row[1], f"key of {where}"), self._json(row[2], f"genome of {where}"), state,
                     seed, result, self._text(row[6], f"worker of {where}", optional=True),
                     self._text(row[7], f"device of {where}", optional=True), cached_from,
                     self._number(row[9], f"created time of {where}"),
                     self._number(row[10], f"start time of {where}", optional=True),
                     self._number(row[11], f"finish time of {where}", optional=True))

    def count_trials(self) -> dict[str, int]:
        counts = {self._text(state, "trial states"): n
                  for state, n in self._conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state")}
        counts["cached"] = self._conn.execute("SELECT COUNT(*) FROM trials WHERE cached_from IS NOT NULL").fetchone()[0]
        return counts
