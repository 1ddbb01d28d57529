"""Progress on stderr for everything that takes more than a moment, on whatever stderr is.

What is shown depends on stderr, looked at when a step or bar starts:

- a terminal: live tqdm bars; a step prints its name when it starts and its duration when it ends
  (if over a second).
- a notebook (an IPython kernel): tqdm.auto's widget bars; steps as lines, as in a log.
- anything else (a log file, nohup, CI, a pipe): plain lines, since a bar redrawn in place is
  unreadable there. A step or bar still running after `grace` seconds writes a start line (so quick
  steps stay silent and a step that fails at once leaves its error as the only line); while anything
  runs, a line at least every `interval` seconds says what is running, for how long, and for a bar
  how far it is and about how long is left; an announced step or bar writes an end line unless it
  failed. A background thread writes these lines, so a long computation cannot hold them back.

The command line turns progress on (`--quiet` leaves it off) and runs each command inside
`command()`, so a command busy outside any step still writes a line within `first` seconds. Library
use starts with progress off; `enable()` turns it on. SEARCHLAB_PROGRESS_INTERVAL sets `interval`
(seconds, default 20); `first` and `grace` (8 s and 2 s by default) scale with it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Iterable, Iterator

_ENABLED = False
INTERVAL, FIRST, GRACE = 20.0, 8.0, 2.0  # seconds; see the module docstring

_LOCK = threading.RLock()
_WAKE = threading.Event()
_ACTIVE: list["_Task"] = []
_STATE = {"last_line": 0.0, "ticker_pid": None}


def enable(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = bool(on)


def enabled() -> bool:
    return _ENABLED


def timings() -> tuple[float, float, float]:
    """(interval, first, grace) in seconds, the interval from SEARCHLAB_PROGRESS_INTERVAL if set."""
    try:
        every = float(os.environ.get("SEARCHLAB_PROGRESS_INTERVAL", INTERVAL))
    except ValueError:
        every = INTERVAL
    every = every if every > 0 else INTERVAL
    return every, FIRST / INTERVAL * every, GRACE / INTERVAL * every


def mode() -> str:
    """'terminal', 'notebook' or 'log': how progress shows on the current stderr."""
    if sys.stderr is not None and sys.stderr.isatty():
        return "terminal"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return "notebook" if type(shell).__name__ == "ZMQInteractiveShell" else "log"


def _plural(unit: str) -> str:
    return unit + "s" if unit.isalpha() and len(unit) > 1 and not unit.endswith("s") else unit


def clock(seconds: float) -> str:
    """8 s, 2m05s, 1h03m."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class _Task:
    """Something running: a step (no total) or a bar (n of total); what the log lines describe."""

    def __init__(self, label: str, total: float | None = None, unit: str = "", announce: bool = True,
                 whole_command: bool = False) -> None:
        self.label, self.total, self.unit, self.announce = label, total, unit, announce
        self.whole_command = whole_command
        self.n, self.postfix, self.announced = 0, "", False
        self.start = time.perf_counter()

    def describe(self, now: float) -> str:
        elapsed = now - self.start
        if not self.total:
            counted = f"{self.n:,} {_plural(self.unit)}, " if self.n else ""
            return f"{self.label}: {counted}{clock(elapsed)} elapsed{self._extra()}"
        done = min(self.n / self.total, 1.0)
        left = f", about {clock(elapsed * (1 - done) / done)} left" if done > 0 else ""
        return (f"{self.label}: {self.n:,}/{self.total:,} {_plural(self.unit)} ({100 * done:.0f}%), {clock(elapsed)} elapsed"
                f"{left}{self._extra()}")

    def _extra(self) -> str:
        return f", {self.postfix}" if self.postfix else ""

    def start_line(self) -> str:
        return f"{self.label} ..." if not self.total else f"{self.label}: {self.total:,} {_plural(self.unit)} ..."

    def end_line(self, now: float) -> str:
        counted = f"{self.n:,} {_plural(self.unit)} " if self.unit and (self.total or self.n) else ""
        return f"{self.label}: {counted}done in {now - self.start:.1f} s"


def _write(line: str) -> None:
    with _LOCK:
        if mode() == "terminal":
            from tqdm import tqdm
            tqdm.write(line, file=sys.stderr)  # keeps an active bar intact
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        _STATE["last_line"] = time.perf_counter()


def _push(task: _Task) -> None:
    with _LOCK:
        if not _ACTIVE:  # the first heartbeat comes `first` seconds from now unless another line comes sooner
            every, first, _ = timings()
            _STATE["last_line"] = task.start - every + first
        _ACTIVE.append(task)
        if _STATE["ticker_pid"] != os.getpid():  # none yet in this process (a forked child has none)
            _STATE["ticker_pid"] = os.getpid()
            threading.Thread(target=_tick_forever, name="searchlab-progress", daemon=True).start()
    _WAKE.set()


def _pop(task: _Task, ok: bool) -> None:
    with _LOCK:
        if task in _ACTIVE:
            _ACTIVE.remove(task)
        if ok and task.announced:
            _write(task.end_line(time.perf_counter()))
    _WAKE.set()


def tick(now: float | None = None) -> float:
    """Write the start lines and the heartbeat that are due; return the seconds until the next is due."""
    with _LOCK:
        if not _ACTIVE:
            return 3600.0
        now = time.perf_counter() if now is None else now
        every, _, grace = timings()
        due = []
        for task in _ACTIVE:
            if task.announce and not task.announced:
                if now - task.start >= grace:
                    task.announced = True
                    _write(task.start_line())
                else:
                    due.append(task.start + grace - now)
        if now - _STATE["last_line"] >= every:
            # what has run past its grace period; the command itself only when nothing else has
            shown = [t for t in _ACTIVE if not t.whole_command and now - t.start >= grace] or _ACTIVE[:1]
            _write("; ".join(task.describe(now) for task in shown))
        due.append(_STATE["last_line"] + every - now)
        return max(0.05, min(due))


def _tick_forever() -> None:
    while True:
        wait = tick()
        _WAKE.wait(wait)
        _WAKE.clear()


@contextlib.contextmanager
def _tracked(task: _Task) -> Iterator[_Task]:
    _push(task)
    try:
        yield task
    except BaseException:
        _pop(task, ok=False)
        raise
    _pop(task, ok=True)


def note(message: str) -> None:
    """One status line (when status lines are on)."""
    if _ENABLED:
        _write(message)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Run a step that takes a while (see the module docstring for what each output shows)."""
    if not _ENABLED:
        yield
        return
    if mode() != "terminal":
        with _tracked(_Task(message)):
            yield
        return
    _write(f"{message} ...")
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if seconds > 1.0:
        _write(f"{message}: done in {seconds:.1f} s")


@contextlib.contextmanager
def command(label: str) -> Iterator[None]:
    """A whole command: not announced, but a log hears from it within `first` seconds and every `interval`."""
    if not _ENABLED or mode() == "terminal":
        yield
        return
    with _tracked(_Task(label, announce=False, whole_command=True)):
        yield


class _LogBar:
    """A bar for logs and pipes: counts for the heartbeat lines; same methods as the tqdm ones used here."""

    def __init__(self, iterable: Iterable | None, total: float | None, desc: str, unit: str, announce: bool) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable = iterable
        self.task = _Task(desc or "working", total, unit, announce)
        self.closed = False
        _push(self.task)

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.task.n += 1
        except BaseException:
            self.close(ok=False)
            raise
        self.close()

    def update(self, n: float = 1) -> None:
        self.task.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.task.postfix = text

    def set_postfix(self, **values: Any) -> None:
        self.task.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.task.label = desc

    def close(self, ok: bool | None = None) -> None:
        """End the bar; no end line while an exception is on its way (a `finally:` after a failure)."""
        if not self.closed:
            self.closed = True
            _pop(self.task, sys.exc_info()[0] is None if ok is None else ok)

    def __enter__(self) -> "_LogBar":
        return self

    def __exit__(self, kind, *_) -> None:
        self.close(ok=kind is None)


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
        show: bool | None = None, announce: bool = True, **tqdm_options: Any):
    """A progress bar for counted work, shown when progress is on (or `show` says so).

    A live tqdm bar on a terminal, tqdm.auto in a notebook, heartbeat lines in a log; `announce=False`
    keeps a log bar to the heartbeat lines (no start and end lines: for the many short bars inside a
    search's evaluations). Returns an object with tqdm's update / set_postfix / close and iteration.
    """
    show = _ENABLED if show is None else show
    where = mode() if show else None
    if where == "log":
        return _LogBar(iterable, total, desc, unit, announce)
    if where == "notebook":
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc or None, unit=unit, file=sys.stderr, disable=not show,
                **{"dynamic_ncols": True, "leave": False, **tqdm_options})
