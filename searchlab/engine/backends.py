"""Backends run evaluations; only the driver writes the run store.

`local` evaluates in the driver process, one trial at a time. `processes` keeps a pool of worker
processes on this machine, each with its own device (round-robin over `devices`), each building the
space and evaluator once from the run's configuration. `ray` sends trials to a Ray cluster
(see `searchlab/engine/ray_backend.py`). The run loop only calls `submit`, `wait` and `close`.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing as mp
import os
import sys
import signal
import warnings
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from searchlab import progress, registry
from searchlab.engine.assembly import build_evaluator, build_space, evaluate_safely
from searchlab.errors import ConfigError
from searchlab.protocols import Context, Result

Finished = tuple[int, Result, str, str]  # trial id, result, worker name, device


def _quiet_resource_tracker() -> None:
    """Launch (and relaunch) the stdlib's resource tracker, which tracks the pool's semaphores, with its
    stderr on /dev/null. Killed, it is relaunched, and the new one would print a KeyError traceback for
    every semaphore the old one knew, plus a warning: none of it is of use to a user (the run goes on
    unharmed), so a relaunch is one status line, and nothing under --quiet."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    launch = getattr(tracker, "ensure_running", None)
    if launch is None or getattr(launch, "quiet", False) or not hasattr(tracker, "_check_alive"):
        return

    def ensure_running() -> None:
        if getattr(tracker, "_fd", None) is not None and tracker._check_alive():
            return launch()
        relaunch = getattr(tracker, "_fd", None) is not None
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                launch()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        if relaunch and progress.enabled():
            progress.note("the multiprocessing resource tracker was stopped from outside and has been restarted")

    ensure_running.quiet = True
    tracker.ensure_running = ensure_running


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


def threads_per_worker(workers: int) -> int:
    """CPU threads each of `workers` processes may use: the cores this process may run on, shared out.

    Without this every worker's torch takes all cores, and `workers` of them oversubscribe the machine.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def _worker_init(plugins: list[str], config: dict, run_dir: str, seed: int, devices: list[str], counter,
                 parent_pid: int, threads: int) -> None:
    _die_with_parent(parent_pid)
    if "OMP_NUM_THREADS" not in os.environ:  # a user's explicit setting wins
        os.environ["OMP_NUM_THREADS"] = str(threads)  # what torch reads when a plug-in imports it
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
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


MAX_WORKER_DEATHS = 2  # a trial whose worker died this many times while it ran alone is recorded as failed


class ProcessBackend:
    """A pool of worker processes on this machine; results come back as they finish.

    A worker that dies (the OOM killer, kill -9) breaks the pool. A new pool is started and the trials
    that were in flight run again, with the same seeds, one at a time, so that a death can be pinned on
    one trial (new trials wait meanwhile). A trial whose worker dies MAX_WORKER_DEATHS times while it
    runs alone is recorded as failed; every other trial stores what it would have stored.
    """

    def __init__(self, workers: int, plugins: list[str], config: dict, run_dir: Path, seed: int, devices: list[str]):
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.slots = workers
        self._pool_args = (workers, list(plugins), config, str(run_dir), seed, list(devices))
        self._pool = self._new_pool()
        self._futures: dict[cf.Future, tuple[int, Any, int]] = {}
        self._suspects: deque[tuple[int, Any, int]] = deque()  # in flight at a death: run again, alone
        self._held: deque[tuple[int, Any, int]] = deque()  # submitted while suspects run (or the pool was down)
        self._deaths: dict[int, int] = {}
        self._broken = False

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        workers, plugins, config, run_dir, seed, devices = self._pool_args
        _quiet_resource_tracker()
        ctx = mp.get_context("spawn")
        return cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_worker_init,
            initargs=(plugins, config, run_dir, seed, devices, ctx.Value("i", 0), os.getpid(),
                      threads_per_worker(workers)))

    def placement(self, trial_id: int) -> tuple[str, str]:
        return "pool", "assigned by worker"

    def submit(self, trial_id: int, genome: Any, seed: int) -> None:
        job = (trial_id, genome, seed)
        if self._suspects:
            self._held.append(job)
        else:
            self._send(job)

    def _send(self, job: tuple[int, Any, int]) -> None:
        try:
            self._futures[self._pool.submit(_worker_evaluate, *job)] = job
        except BrokenProcessPool:  # a worker died since the last wait: the job waits for the new pool
            self._held.append(job)
            self._broken = True

    def wait(self) -> list[Finished]:
        done = cf.wait(set(self._futures), return_when=cf.FIRST_COMPLETED)[0] if self._futures else set()
        out = []
        for fut in done:
            try:
                trial_id, result, worker, device = fut.result()
            except BrokenProcessPool:
                self._broken = True
                continue
            del self._futures[fut]
            out.append((trial_id, Result.from_json(result), worker, device))
        if self._broken:
            self._broken = False
            out += self._after_death()
        self._advance()
        return out

    def _after_death(self) -> list[Finished]:
        """A new pool; the trials in flight become suspects, and a lone one is charged with the death."""
        jobs = list(self._futures.values())
        self._futures.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        if len(jobs) != 1:  # the culprit is not known: each runs again alone
            self._suspects.extend(jobs)
            return []
        trial_id = jobs[0][0]
        self._deaths[trial_id] = self._deaths.get(trial_id, 0) + 1
        if self._deaths[trial_id] < MAX_WORKER_DEATHS:
            self._suspects.appendleft(jobs[0])
            return []
        return [(trial_id, Result.failed(
            f"the worker process died {MAX_WORKER_DEATHS} times while evaluating this trial alone (killed from "
            f"outside, or out of memory); lower its memory use or run fewer --workers"), "pool", "-")]

    def _advance(self) -> None:
        """With nothing in flight: the next suspect alone, or, once none is left, the held trials."""
        if self._futures:
            return
        if self._suspects:
            self._send(self._suspects.popleft())
        else:
            while self._held:
                self._send(self._held.popleft())

    def close(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_devices(device: str) -> list[str]:
    """`auto` -> every CUDA device when present (one per worker, round-robin), else the CPU."""
    if device != "auto":
        return [d.strip() for d in device.split(",") if d.strip()]
    if sys.platform == "linux" and not any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/kfd")):
        return ["cpu"]  # no GPU driver (NVIDIA or ROCm): no need to import torch (seconds) to learn it
    try:
        import torch
        if torch.cuda.is_available():
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return ["cpu"]
