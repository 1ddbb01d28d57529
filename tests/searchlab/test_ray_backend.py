"""The Ray backend: same trials as the process pool, killed workers re-run their trial, kill -9 + resume.

One local Ray instance (2 CPUs) serves the whole module: in-process runs reuse it, and CLI runs in
subprocesses join it with --ray-address, because starting Ray on a small machine takes many seconds.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import plugins_for_tests  # noqa: F401  (registers the bit-string space)
from searchlab.evolvers import aging_evolution, random_search  # noqa: F401
from searchlab.engine import runner
from searchlab.errors import ConfigError
from searchlab.engine.ray_backend import RayOptions, assigned_device, check_device, import_ray, ray_config
from searchlab.store.run_store import RunStore
from test_kill_resume import cli, run_and_kill, told
from test_runner import trial_rows

SPACE = {"length": 16}
STRATEGY = {"population": 8, "sample_size": 3}
EVALS = 16
try:
    import ray  # noqa: F401
    UNREACHABLE = "cannot reach the Ray cluster at 127.0.0.1:1"
except ImportError:  # without Ray the same command must say how to install it
    UNREACHABLE = "pip install 'searchlab[ray]'"
CLI_ARGS = ["bits", "--length", "16", "--population", "8", "--sample-size", "3", "--max-evals", str(EVALS),
            "--seed", "5", "--workers", "2", "--quiet", "--no-finalize"]


def make_run(run_dir, backend, sleep=0.0, seed=5, **extra):
    runner.create_run(run_dir, space="bits", strategy="evolution", evaluator="weighted-ones", space_config=SPACE,
                      strategy_config=STRATEGY, evaluator_config={"sleep": sleep}, seed=seed,
                      budget=runner.Budget(max_evals=EVALS), backend=backend, workers=2, device="auto",
                      extra=extra or None)
    return run_dir


# ------------------------------------------------------------------ without a cluster

def test_options_are_checked_with_one_line_messages():
    assert RayOptions(address="auto").address == "auto"
    assert RayOptions(address="10.0.0.5:6379", gpus_per_trial=0.5).gpus_per_trial == 0.5
    assert RayOptions(address="ray://head.example:10001").address.startswith("ray://")
    for bad in ({"address": "somewhere"}, {"address": "host:port"}, {"gpus_per_trial": -1},
                {"gpus_per_trial": 1.5}, {"cpus_per_trial": 0}, {"cpus_per_trial": float("nan")}):
        with pytest.raises(ConfigError) as err:
            RayOptions(**bad)
        assert "\n" not in str(err.value) and "--" in str(err.value)
    with pytest.raises(ConfigError, match="--gpus-per-trial"):
        check_device("cuda:1", RayOptions())
    with pytest.raises(ConfigError, match="contradict"):
        check_device("cpu", RayOptions(gpus_per_trial=1))


def test_auto_address_is_found_or_explained(monkeypatch, tmp_path):
    from searchlab.engine.ray_backend import resolve_address
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(ConfigError, match="found no Ray cluster on this machine"):
        resolve_address("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.1.2.3:6379\n")   # written by `ray start --head`
    assert resolve_address("auto") == "10.1.2.3:6379"
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert resolve_address("auto") == "head:10001"
    assert resolve_address("ray://other:10001") == "other:10001"


def test_a_trial_uses_exactly_the_gpus_ray_assigned(monkeypatch):
    monkeypatch.delenv("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", raising=False)
    assert assigned_device([]) == "cpu"
    assert assigned_device(["3"]) == "cuda:0"          # Ray narrowed CUDA_VISIBLE_DEVICES to GPU 3
    assert assigned_device(["3"], requested="cpu") == "cpu"
    monkeypatch.setenv("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", "1")
    assert assigned_device(["3", "5"]) == "cuda:3"      # all GPUs visible: use the assigned id itself


def test_missing_ray_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install 'searchlab\[ray\]'"):
        import_ray()
    with pytest.raises(ConfigError, match="not installed"):
        ray_config(None, None, None)


def test_cli_refuses_bad_ray_flags_before_storing_anything(tmp_path, capsys):
    import cli as searchlab_cli
    cases = [(["--backend", "ray", "--ray-address", "nowhere"], "--ray-address"),
             (["--gpus-per-trial", "1"], "only applies to --backend ray"),
             (["--backend", "ray", "--gpus-per-trial", "-1"], "--gpus-per-trial"),
             (["--backend", "ray", "--device", "cuda:0"], "--gpus-per-trial"),
             (["--backend", "ray", "--ray-address", "127.0.0.1:1"], UNREACHABLE)]
    for i, (flags, message) in enumerate(cases):
        run_dir = tmp_path / f"r{i}"
        code = searchlab_cli.main(["search", *CLI_ARGS, *flags, "--run", str(run_dir)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
        assert not (run_dir / "run.sqlite").exists()


def test_resume_checks_ray_flags_and_leaves_the_run_as_it_was(tmp_path, capsys):
    import cli as searchlab_cli
    run_dir = make_run(tmp_path / "run", "processes")
    for flags, message in ((["--gpus-per-trial", "1"], "only applies to --backend ray"),
                           (["--backend", "ray", "--ray-address", "127.0.0.1:1"], UNREACHABLE)):
        assert searchlab_cli.main(["resume", str(run_dir), "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    with RunStore.open(run_dir) as store:
        assert store.config["backend"] == "processes" and "ray_address" not in store.config
        assert store.trials() == []


# ------------------------------------------------------------------ on a local Ray instance with 2 CPUs

@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The bit-string search with a window of 2, evaluated in this process: what every Ray run must reproduce."""
    run_dir = make_run(tmp_path_factory.mktemp("local") / "run", "processes")
    assert runner.run(run_dir, backend="local", workers=1).reason == "max_evals"  # same window, same trials
    rows = trial_rows(run_dir)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= EVALS
    return rows


def test_ray_gives_the_same_trials_as_processes_on_nasbench101(ray_address, tmp_path):
    """The NAS-Bench-101 table is deterministic: both backends must store identical trials."""
    nb101 = pytest.importorskip("searchlab.search_spaces.nasbench101.plugin")
    runs = {}
    for backend in ("processes", "ray"):
        runner.create_run(tmp_path / backend, space="nasbench101", strategy="evolution", evaluator="table",
                          space_config={}, strategy_config={"population": 10, "sample_size": 3}, evaluator_config={},
                          seed=7, budget=runner.Budget(max_evals=30), backend=backend, workers=2, device="auto",
                          plugins=[nb101.__name__])
        outcome = runner.run(tmp_path / backend)
        assert outcome.reason == "max_evals" and outcome.evaluated == 30
        runs[backend] = trial_rows(tmp_path / backend)
    assert runs["ray"] == runs["processes"]
    assert len({r[1] for r in runs["ray"]}) == 30 and all(r[2] == "done" for r in runs["ray"])
    with RunStore.open(tmp_path / "ray") as store:
        placed = {(t.worker, t.device) for t in store.trials() if t.cached_from is None}
    assert all(w.startswith("ray") and d in ("cpu", "assigned by ray") for w, d in placed)


def test_ray_gives_the_same_trials_as_in_process(ray_address, reference, tmp_path):
    run_dir = make_run(tmp_path / "ray", "ray")
    outcome = runner.run(run_dir)
    assert outcome.reason == "max_evals" and outcome.evaluated == EVALS
    assert trial_rows(run_dir) == reference


def _kill_evaluating_workers(stop: threading.Event, killed: list, kills: int) -> None:
    """SIGKILL Ray worker processes while they run an evaluation (their title is `ray::...evaluate`)."""
    import psutil
    while not stop.is_set() and len(killed) < kills:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            title = " ".join(proc.info["cmdline"] or [])
            if title.startswith("ray::EvaluatorActor.evaluate") and proc.info["pid"] not in killed:
                time.sleep(0.1)  # well inside the trial's 0.4 s
                try:
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    killed.append(proc.info["pid"])
                except ProcessLookupError:
                    pass
                break
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("ray_retries", [3, 0], ids=["ray-restarts-actor", "driver-replaces-actor"])
def test_killed_worker_reruns_its_trial_once(ray_address, reference, tmp_path, ray_retries, capsys):
    run_dir = make_run(tmp_path / "ray", "ray", sleep=0.4, ray_max_retries=ray_retries)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_evaluating_workers, args=(stop, killed, 2), daemon=True)
    killer.start()
    try:
        outcome = runner.run(run_dir)
    finally:
        stop.set()
        killer.join()
    assert len(killed) >= 1, "no worker was killed mid-trial"
    captured = capsys.readouterr()
    assert "(raylet)" not in captured.out               # Ray's notices go to stderr
    assert outcome.reason == "max_evals"
    rows = trial_rows(run_dir)
    assert rows == reference                                  # every trial once, none lost, same results
    assert all(r[2] == "done" for r in rows)


def test_a_trial_that_cannot_fit_the_cluster_is_refused(ray_address, tmp_path):
    run_dir = make_run(tmp_path / "ray", "ray", gpus_per_trial=64.0)
    with pytest.raises(ConfigError, match="--gpus-per-trial 64 asks for more than the Ray cluster has"):
        runner.run(run_dir)
    assert trial_rows(run_dir) == []


@pytest.mark.slow
def test_kill9_of_the_driver_and_resume_gives_the_uninterrupted_trials(ray_address, reference, tmp_path):
    args = [*CLI_ARGS, "--backend", "ray", "--ray-address", ray_address, "--sleep", "0.2"]
    run_dir = tmp_path / "killed"
    rng = np.random.default_rng(1)
    kills = int(run_and_kill(cli("search", *args, "--run", str(run_dir)), run_dir, rng, at_least=2)
                == -signal.SIGKILL)
    while kills < 2 and told(run_dir) < EVALS - 3:
        code = run_and_kill(cli("resume", str(run_dir), "--quiet", "--no-finalize"), run_dir, rng,
                            told(run_dir) + 3)
        kills += code == -signal.SIGKILL
    assert kills >= 2, f"only {kills} kills landed mid-run"
    final = subprocess.run(cli("resume", str(run_dir), "--quiet", "--no-finalize"), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert trial_rows(run_dir) == reference


@pytest.mark.slow
def test_without_an_address_a_local_ray_is_started_and_stopped_with_the_run(ray_address, reference, tmp_path):
    import psutil
    run_dir = tmp_path / "local"
    proc = subprocess.Popen(cli("search", *CLI_ARGS, "--backend", "ray", "--run", str(run_dir)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started: set[int] = set()
    while proc.poll() is None:
        try:
            started |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)
                        if "gcs_server" in c.name() or "raylet" in c.name()}
        except psutil.Error:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert started, "the run did not start its own Ray instance"
    time.sleep(1.0)
    assert not [p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert trial_rows(run_dir) == reference


@pytest.mark.gpu
def test_each_worker_gets_its_own_gpu(ray_address, tmp_path):
    import torch
    ray = pytest.importorskip("ray")
    if not torch.cuda.is_available() or ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("needs CUDA and a GPU in the Ray cluster")
    from searchlab.engine.ray_backend import RayBackend
    run_dir = make_run(tmp_path / "gpu", "ray", gpus_per_trial=1.0)
    with RunStore.open(run_dir) as store:
        config = store.config
    backend = RayBackend(1, [], config, run_dir, 0)
    try:
        info = backend.actor_info(0, timeout=120)
        assert info["device"] == "cuda:0" and len(info["gpu_ids"]) == 1
    finally:
        backend.close()
