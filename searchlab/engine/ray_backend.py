"""The `ray` backend: evaluate trials on a Ray cluster (a local one started with the run, or an existing one).

Each of the run's `workers` is a Ray actor that builds the space and evaluator once, from the run's
JSON configuration, on the CPUs and GPUs Ray reserved for it (`--cpus-per-trial`, `--gpus-per-trial`).
Ray restarts an actor whose process dies and re-runs the evaluation it was doing (`max_restarts`,
`max_task_retries`); if an actor is gone for good the driver starts a new one and submits the trial
again. Results stream back to the driver, which alone writes the run store, so a trial is recorded
exactly once whatever happens to workers. The engine's window keeps results reproducible.
"""

from __future__ import annotations

import math
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from searchlab import registry
from searchlab.engine.assembly import build_evaluator, build_space, evaluate_safely
from searchlab.errors import ConfigError, SearchlabError
from searchlab.protocols import Context, Result

INSTALL_HINT = "pip install 'searchlab[ray]'"
RESUBMITS = 2  # times the driver re-runs a trial on a fresh actor after Ray's own retries ran out
_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")


def import_ray() -> Any:
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend ray needs Ray, which is not installed here; install it with "
                          f"`{INSTALL_HINT}` (or use --backend processes)") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and what one trial reserves on it."""

    address: str | None = None
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.address is not None and self.address != "auto" and not _ADDRESS.match(self.address):
            raise ConfigError(f"--ray-address must be auto or HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379), "
                              f"got {self.address!r}")
        if not (math.isfinite(self.gpus_per_trial) and self.gpus_per_trial >= 0):
            raise ConfigError(f"--gpus-per-trial must be 0 or more (fractions share a GPU), got {self.gpus_per_trial}")
        if not (math.isfinite(self.cpus_per_trial) and self.cpus_per_trial > 0):
            raise ConfigError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise ConfigError(f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.max_retries < 0:
            raise ConfigError(f"the number of Ray retries must be 0 or more, got {self.max_retries}")

    @classmethod
    def from_config(cls, config: dict) -> "RayOptions":
        return cls(address=config.get("ray_address") or None,
                   gpus_per_trial=float(config.get("gpus_per_trial") or 0.0),
                   cpus_per_trial=float(config.get("cpus_per_trial") or 1.0),
                   max_retries=int(config.get("ray_max_retries", 3)))

    def to_config(self) -> dict:
        """The run-config entries (JSON) that `from_config` reads back on resume."""
        return {"ray_address": self.address, "gpus_per_trial": self.gpus_per_trial,
                "cpus_per_trial": self.cpus_per_trial}


def ray_config(address: str | None, gpus_per_trial: float | None, cpus_per_trial: float | None,
               device: str = "auto") -> dict:
    """Check the Ray flags of `search`/`resume` (and that Ray is installed) before anything is stored."""
    options = RayOptions(address=address or None, gpus_per_trial=0.0 if gpus_per_trial is None else gpus_per_trial,
                         cpus_per_trial=1.0 if cpus_per_trial is None else cpus_per_trial)
    check_device(device, options)
    import_ray()
    if options.address is not None:
        check_reachable(options.address)
    return options.to_config()


def check_device(device: str, options: RayOptions) -> None:
    if device not in ("auto", "cpu"):
        raise ConfigError(f"with --backend ray each trial runs on the GPUs Ray assigns to it: use --device auto "
                          f"with --gpus-per-trial G instead of --device {device}")
    if device == "cpu" and options.gpus_per_trial > 0:
        raise ConfigError("--device cpu and --gpus-per-trial > 0 contradict each other; drop one of them")


def assigned_device(gpu_ids: list, requested: str = "auto") -> str:
    """The torch device of a trial that Ray gave `gpu_ids`: the first of them, else the CPU.

    Ray sets CUDA_VISIBLE_DEVICES to the assigned GPUs, so inside the worker they are cuda:0..k-1;
    only when that is switched off (RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES) are the ids global.
    """
    if requested == "cpu" or not gpu_ids:
        return "cpu"
    if os.environ.get("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"):
        return f"cuda:{gpu_ids[0]}"
    return "cuda:0"


def resolve_address(address: str) -> str:
    """HOST:PORT of a cluster address; `auto` is $RAY_ADDRESS or the cluster `ray start` made on this machine."""
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS", "").strip()
        current = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if not found and current.is_file():
            found = current.read_text().strip()
        if not found:
            raise ConfigError("--ray-address auto found no Ray cluster on this machine; start one with "
                              "`ray start --head`, pass --ray-address HOST:PORT, or omit --ray-address for a "
                              "local instance")
        address = found
    return address.removeprefix("ray://")


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast: Ray itself retries an unreachable address for minutes."""
    host_port = resolve_address(address)
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot reach the Ray cluster at {host_port} ({reason}); start it with "
                          f"`ray start --head --port {port or 6379}` there, or omit --ray-address for a local "
                          f"instance") from None


def plugin_modules(plugins: list[str]) -> list[str]:
    """The driver's plug-in modules, including $SEARCHLAB_PLUGINS (workers on other nodes lack that variable)."""
    extra = [m.strip() for m in os.environ.get("SEARCHLAB_PLUGINS", "").split(",") if m.strip()]
    return list(dict.fromkeys([*plugins, *extra]))


class EvaluatorActor:
    """One Ray worker: the run's space and evaluator, built once on the resources Ray reserved for it."""

    def __init__(self, plugins: list[str], config: dict, run_dir: str, seed: int, index: int):
        import ray
        self.gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        self.device = assigned_device(self.gpu_ids, config.get("device", "auto"))
        node = ray.get_runtime_context().get_node_id()[:8]
        self.name = f"ray{index}:{node}:{os.getpid()}"
        self.error: str | None = None
        self.evaluator = None
        try:
            registry.load_plugins(plugins)
            ctx = Context(run_dir=Path(run_dir), seed=seed, device=self.device)
            self.evaluator = build_evaluator(build_space(config, ctx), config, ctx)
        except SearchlabError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the driver as one line
            self.error = f"{type(exc).__name__}: {exc}"

    def info(self) -> dict:
        return {"name": self.name, "device": self.device, "gpu_ids": self.gpu_ids, "pid": os.getpid(),
                "error": self.error}

    def evaluate(self, trial_id: int, genome: Any, seed: int) -> tuple[int, dict | None, str, str, str | None]:
        if self.error is not None:
            return trial_id, None, self.name, self.device, self.error
        result = evaluate_safely(self.evaluator, genome, seed, self.device)
        return trial_id, result.to_json(), self.name, self.device, None


class RayBackend:
    """Keeps one actor per worker busy; the run loop sees the same submit/wait seam as for processes."""

    def __init__(self, workers: int, plugins: list[str], config: dict, run_dir: Path, seed: int):
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.options = RayOptions.from_config(config)
        check_device(config.get("device", "auto"), self.options)
        self.ray = ray = import_ray()
        self.slots = workers
        self._owns_ray = False
        if not ray.is_initialized():
            self._connect(workers)
        _cluster_errors_to_stderr(ray)
        self._check_resources()
        self._args = (plugin_modules(plugins), config, str(run_dir), int(seed))
        self._actor_cls = ray.remote(EvaluatorActor).options(
            num_cpus=self.options.cpus_per_trial, num_gpus=self.options.gpus_per_trial,
            max_restarts=self.options.max_retries, max_task_retries=self.options.max_retries,
            max_concurrency=1)
        self._actors: list[Any] = []
        self._info: list[Any] = []  # per actor: an ObjectRef of its info() until known, then the dict
        for index in range(workers):
            self._actors.append(None)
            self._info.append(None)
            self._start_actor(index)
        self._busy = [0] * workers
        self._inflight: dict[Any, tuple[int, Any, int, int]] = {}  # ref -> (trial id, genome, seed, actor index)
        self._attempts: dict[int, int] = {}
        self._planned: dict[int, int] = {}

    # ------------------------------------------------------------------ cluster
    def _connect(self, workers: int) -> None:
        ray, opts = self.ray, self.options
        if opts.address is not None:
            check_reachable(opts.address)
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING",
                 "configure_logging": True}
        try:
            if opts.address is None:
                cpus = max(os.cpu_count() or 1, math.ceil(workers * opts.cpus_per_trial))
                with _loopback_only():
                    ray.init(address="local", num_cpus=cpus, _system_config={"enable_metrics_collection": False},
                             **quiet)
            else:
                ray.init(address=opts.address, log_to_driver=False, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray instance" if opts.address is None else f"the Ray cluster at {opts.address}"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot start or reach {where}: {first}; start one with `ray start --head` and pass "
                              f"--ray-address HOST:PORT (or omit --ray-address for a local instance)") from None
        self._owns_ray = True

    def _check_resources(self) -> None:
        """A trial that asks for more than the whole cluster has would wait forever: say so now."""
        total = self.ray.cluster_resources()
        for flag, need, have in (("--gpus-per-trial", self.options.gpus_per_trial, total.get("GPU", 0.0)),
                                 ("--cpus-per-trial", self.options.cpus_per_trial, total.get("CPU", 0.0))):
            if need > have:
                self.close()
                raise ConfigError(f"{flag} {need:g} asks for more than the Ray cluster has ({have:g}); lower it or "
                                  f"add nodes with `ray start --address HEAD:PORT`")

    def _start_actor(self, index: int) -> None:
        self._actors[index] = actor = self._actor_cls.remote(*self._args, index)
        self._info[index] = actor.info.remote()

    def actor_info(self, index: int, timeout: float | None = 0) -> dict | None:
        """Name, device and GPU ids of worker `index` once it has started (None before)."""
        info = self._info[index]
        if info is not None and not isinstance(info, dict):
            ready, _ = self.ray.wait([info], timeout=timeout)
            if not ready:
                return None
            try:
                info = self._info[index] = self.ray.get(info)
            except self.ray.exceptions.RayError:
                return None
            if info["error"] is not None:
                raise ConfigError(f"a Ray worker could not build the evaluator: {info['error']}")
        return info

    # ------------------------------------------------------------------ seam used by the run loop
    def placement(self, trial_id: int) -> tuple[str, str]:
        index = min(range(len(self._actors)), key=lambda i: (self._busy[i], i))
        self._planned[trial_id] = index
        info = self.actor_info(index)
        return (info["name"], info["device"]) if info else (f"ray{index}", "assigned by ray")

    def submit(self, trial_id: int, genome: Any, seed: int) -> None:
        index = self._planned.pop(trial_id, None)
        if index is None:
            index = min(range(len(self._actors)), key=lambda i: (self._busy[i], i))
        self._busy[index] += 1
        ref = self._actors[index].evaluate.remote(trial_id, genome, seed)
        self._inflight[ref] = (trial_id, genome, seed, index)

    def wait(self) -> list[tuple[int, Result, str, str]]:
        ray = self.ray
        refs = list(self._inflight)
        if not refs:
            return []
        ready, rest = ray.wait(refs, num_returns=1)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out = []
        for ref in ready:
            trial_id, genome, seed, index = self._inflight.pop(ref)
            self._busy[index] -= 1
            try:
                tid, result, worker, device, error = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # evaluate_safely catches nearly everything
                out.append((trial_id, Result.failed(f"Ray task failed: {_first_line(exc)}"), f"ray{index}", "?"))
                continue
            except ray.exceptions.RayError as exc:  # the worker (or its node) is gone after Ray's own retries
                self._replace_actor(index)
                attempts = self._attempts.get(trial_id, 0) + 1
                self._attempts[trial_id] = attempts
                if attempts > RESUBMITS:
                    out.append((trial_id, Result.failed(
                        f"the Ray worker evaluating this trial died {attempts} times ({_first_line(exc)})"),
                        f"ray{index}", "?"))
                else:
                    self.submit(trial_id, genome, seed)
                continue
            if error is not None:
                raise ConfigError(f"a Ray worker could not build the evaluator: {error}")
            self._attempts.pop(tid, None)
            out.append((tid, Result.from_json(result), worker, device))
        return out

    def _replace_actor(self, index: int) -> None:
        try:
            self.ray.kill(self._actors[index], no_restart=True)
        except Exception:  # noqa: BLE001 - it is already dead
            pass
        self._start_actor(index)

    def close(self) -> None:
        ray = self.ray
        for actor in getattr(self, "_actors", []):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._inflight = {}
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False


@contextmanager
def _loopback_only():
    """Start the run's own Ray instance on 127.0.0.1 only: nothing of it is reachable from the network.

    `ray.init` resolves 127.0.0.1 to the machine's public address unless Ray believes it runs on a
    single-machine platform; that belief is one module constant, switched off for the start alone.
    A cluster the user starts (`ray start --head`, then `--ray-address`) binds as the user says.
    """
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without the switch: it binds as it always did
        yield
        return
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _cluster_errors_to_stderr(ray: Any) -> None:
    """Ray prints cluster errors ("a worker died ...") on stdout; send them to stderr so stdout stays results
    (e.g. `--json`). A no-op where Ray's internals differ."""
    module = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(module, "print_to_stdstream", None)
    if original is None or getattr(original, "to_stderr", False):
        return

    def print_to_stdstream(data, *args, **kwargs):
        if isinstance(data, dict) and data.get("pid") == "raylet":
            data = {**data, "is_err": True}
        return original(data, *args, **kwargs)

    print_to_stdstream.to_stderr = True
    module.print_to_stdstream = print_to_stdstream


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:300] if text else type(exc).__name__

