"""Backends run evaluations; only the driver writes the run store.

`local` evaluates in the driver process, one trial at a time. `processes` keeps a pool of worker
processes on this machine, each with its own device (round-robin over `devices`), each building the
space and evaluator once from the run's configuration. `ray` sends trials to a Ray cluster
(see `searchlab/ray_backend.py`). The run loop only calls `submit`, `wait` and `close`.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing as mp
import os
import signal
from collections import deque
from pathlib import Path
from typing import Any

from searchlab import registry
from searchlab.assembly import build_evaluator, build_space, evaluate_safely
from searchlab.errors import ConfigError
from searchlab.protocols import Context, Result

Finished = tuple[int, Result, str, str]  # trial id, result, worker name, device


class LocalBackend:
    """Evaluate in this process, in submission order."""

    def __init__(self, evaluator: Any, device: str):
        self.slots = 1
        self._evaluator = evaluator
        self._device = device
        self._queue: deque[tuple[int, Any, int]] = deque()

    def placement(self, trial_id: int) -> tuple[str, str]:
        return f"local:{os.getpid()}", self._device

    def submit(self, trial_id: int, genome: Any, seed: int) -> None:
        self._queue.append((trial_id, genome, seed))

    def wait(self) -> list[Finished]:
        trial_id, genome, seed = self._queue.popleft()
        worker, device = self.placement(trial_id)
        return [(trial_id, evaluate_safely(self._evaluator, genome, seed, device), worker, device)]

    def close(self) -> None:
        self._queue.clear()


# ------------------------------------------------------------------------------------------ processes
_WORKER: dict[str, Any] = {}


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this worker when the driver dies (a kill -9 leaves no orphans).

    The request only covers a parent alive at the time it is made, so a worker whose driver died
    while it was starting exits at once.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _worker_init(plugins: list[str], config: dict, run_dir: str, seed: int, devices: list[str], counter,
                 parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    device = devices[index % len(devices)]
    registry.load_plugins(plugins)
    ctx = Context(run_dir=Path(run_dir), seed=seed, device=device)
    space = build_space(config, ctx)
    _WORKER.update(evaluator=build_evaluator(space, config, ctx), device=device, name=f"proc{index}:{os.getpid()}")


def _worker_evaluate(trial_id: int, genome: Any, seed: int) -> tuple[int, dict, str, str]:
    result = evaluate_safely(_WORKER["evaluator"], genome, seed, _WORKER["device"])
    return trial_id, result.to_json(), _WORKER["name"], _WORKER["device"]


class ProcessBackend:
    """A pool of worker processes on this machine; results come back as they finish."""

    def __init__(self, workers: int, plugins: list[str], config: dict, run_dir: Path, seed: int, devices: list[str]):
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.slots = workers
        ctx = mp.get_context("spawn")
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_worker_init,
            initargs=(list(plugins), config, str(run_dir), seed, list(devices), ctx.Value("i", 0), os.getpid()))
        self._futures: set[cf.Future] = set()

    def placement(self, trial_id: int) -> tuple[str, str]:
        return "pool", "assigned by worker"

    def submit(self, trial_id: int, genome: Any, seed: int) -> None:
        self._futures.add(self._pool.submit(_worker_evaluate, trial_id, genome, seed))

    def wait(self) -> list[Finished]:
        done, self._futures = cf.wait(self._futures, return_when=cf.FIRST_COMPLETED)
        out = []
        for fut in done:
            trial_id, result, worker, device = fut.result()
            out.append((trial_id, Result.from_json(result), worker, device))
        return out

    def close(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_devices(device: str) -> list[str]:
    """`auto` -> every CUDA device when present (one per worker, round-robin), else the CPU."""
    if device != "auto":
        return [d.strip() for d in device.split(",") if d.strip()]
    try:
        import torch
        if torch.cuda.is_available():
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return ["cpu"]
