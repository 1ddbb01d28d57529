"""Status lines on stderr for steps that take more than a moment (reading data, fitting a predictor,
pretraining, fine-tuning), so long work is never silent.

The command line turns them on (`--quiet` leaves them off); library use starts with them off. On a
terminal a step is announced when it starts and, if it took over a second, reported when it ends; in
a log (stderr not a terminal) only steps over two seconds are reported, when they end, so that an
error stays the only line a failed command prints.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator

_ENABLED = False


def enable(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = bool(on)


def enabled() -> bool:
    return _ENABLED


def bars() -> bool:
    """Whether training shows its step bar: status lines are on and stderr is a terminal."""
    return _ENABLED and sys.stderr.isatty()


def _write(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)  # keeps an active progress bar intact


def note(message: str) -> None:
    """One status line (when status lines are on)."""
    if _ENABLED:
        _write(message)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Announce `message` (on a terminal) and report its duration when it ends (see the module docstring)."""
    if not _ENABLED:
        yield
        return
    terminal = sys.stderr.isatty()
    if terminal:
        _write(f"{message} ...")
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if seconds > (1.0 if terminal else 2.0):
        _write(f"{message}: done in {seconds:.1f} s")
