"""Throughput of CPU-bound trials on Ray: 2 workers against 1, measured in the same run. Target >= 1.6x.

Each trial really trains a small NAS-Bench-101 network (stem 8, one stack, one cell) for one epoch on
MNIST digits with the shared trainer (`--evaluator train`), one CPU thread per trial. Every setting
evaluates the same cells with the same seeds through the backends the engine uses: `RayBackend` (one
actor per worker on one local Ray instance) and, as the baseline of what the machine gives right now,
the local process pool (`ProcessBackend`). The clock starts after one warm-up trial per worker, so
start-up is not counted. Results of all settings must agree exactly. Besides throughput it prints how
many trials were running on average (sum of trial seconds / elapsed): close to the worker count
means the backend kept every worker busy, whatever share of the CPUs the machine gave each trial.

    python bench/ray_throughput.py                          # 12 trials on the MNIST fixture
    python bench/ray_throughput.py --trials 24 --data mnist:../shared/data/mnist --train-size 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab import registry  # noqa: E402
from searchlab.engine.assembly import build_space  # noqa: E402
from searchlab.engine.backends import ProcessBackend  # noqa: E402
from searchlab.protocols import Context  # noqa: E402
from searchlab.engine.ray_backend import RayBackend, import_ray  # noqa: E402
from searchlab.engine.seeding import trial_seed  # noqa: E402

PLUGINS = ["searchlab.search_spaces.nasbench101.plugin", "searchlab.training.train_evaluator"]


def config(args) -> dict:
    return {"space": "nasbench101", "evaluator": "train", "device": "cpu", "backend": "ray",
            "space_config": {"stem_channels": 8, "num_stacks": 1, "modules_per_stack": 1},
            "evaluator_config": {"data": args.data, "epochs": 1.0, "batch_size": 64, "val_fraction": 0.2,
                                 "train_size": args.train_size},
            "cpus_per_trial": 1.0, "gpus_per_trial": 0.0}


def evaluate_all(backend, workers: int, genomes: list, first_id: int = 1) -> dict:
    """Evaluate `genomes` keeping `workers` trials in flight; results by trial id."""
    results: dict[int, object] = {}
    queue = list(enumerate(genomes, start=first_id))
    in_flight = 0
    while len(results) < len(genomes):
        while queue and in_flight < workers:
            trial_id, genome = queue.pop(0)
            backend.placement(trial_id)
            backend.submit(trial_id, genome, trial_seed(0, trial_id))
            in_flight += 1
        for trial_id, result, _worker, _device in backend.wait():
            results[trial_id] = result
            in_flight -= 1
    return results


def measure(kind: str, workers: int, genomes: list, cfg: dict, run_dir: Path) -> tuple[float, list]:
    """Seconds to evaluate every genome with `workers` workers kept busy, and the results in order."""
    if kind == "ray":
        backend = RayBackend(workers, PLUGINS, cfg, run_dir, 0)
    else:
        backend = ProcessBackend(workers, PLUGINS, cfg, run_dir, 0, ["cpu"])
    try:
        evaluate_all(backend, workers, genomes[:1] * workers, first_id=10_000)  # warm-up: start every worker
        start = time.perf_counter()
        results = evaluate_all(backend, workers, genomes)
        seconds = time.perf_counter() - start
    finally:
        backend.close()
    return seconds, [results[i] for i in sorted(results)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="trials per setting (default: 12)")
    parser.add_argument("--data", default=f"mnist:{ROOT / 'tests/data/mnist_mini'}", help="data set KIND:PATH")
    parser.add_argument("--train-size", type=int, default=0, help="training images per trial (0 = all)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the settings this many times")
    parser.add_argument("--backends", nargs="+", default=["ray", "processes"], choices=["ray", "processes"],
                        help="backends to measure (default: both; processes is the baseline)")
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per trial in every worker, as Ray does for 1 CPU
    ray = import_ray()
    registry.load_plugins(PLUGINS)
    cfg = config(args)
    space = build_space(cfg, Context(seed=0, device="cpu"))
    rng = np.random.default_rng(0)
    genomes = [space.validate(space.sample(rng)) for _ in range(args.trials)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    settings = [(kind, w) for kind in ("ray", "processes") if kind in args.backends for w in (1, 2)]
    timings: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    outcomes = {}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for kind, workers in settings:
                    seconds, results = measure(kind, workers, genomes, cfg, Path(tmp))
                    timings[(kind, workers)].append(seconds)
                    outcomes[(kind, workers)] = [(r.status, r.objectives.get("accuracy")) for r in results]
                    busy = sum(r.cost.get("seconds", 0.0) for r in results)
                    print(f"{kind:9s} {workers} worker(s): {args.trials} trials in {seconds:6.1f} s "
                          f"({60 * args.trials / seconds:.1f} trials/min; {busy / seconds:.2f} trials running on "
                          f"average, {busy / args.trials:.2f} s per trial)", flush=True)
    finally:
        ray.shutdown()
    print(f"machine: load average {os.getloadavg()[0]:.1f} at the end")
    for kind in ("ray", "processes"):
        if (kind, 1) in timings:
            one, two = min(timings[(kind, 1)]), min(timings[(kind, 2)])
            print(f"{kind}: throughput 2 workers / 1 worker = {one / two:.2f}x (best of {args.repeats})"
                  + ("   target >= 1.6x" if kind == "ray" else "   baseline: what this machine allows now"))
    if ("ray", 2) in timings and ("processes", 2) in timings:
        print(f"ray / processes with 2 workers: {min(timings[('processes', 2)]) / min(timings[('ray', 2)]):.2f}x")
    reference = next(iter(outcomes.values()))
    print(f"results identical in every setting: {all(o == reference for o in outcomes.values())}")
    failed = sum(1 for status, _ in reference if status != "ok")
    if failed:
        print(f"warning: {failed} trial(s) failed")


if __name__ == "__main__":
    main()
