"""ReNAS training steps (the demo's predictor fit) with 1 and 2 torch threads, idle OpenMP threads spinning
without end (OMP_WAIT_POLICY=ACTIVE; libgomp's default spins a while, then sleeps) or sleeping (PASSIVE, the
command line's default): wall and CPU seconds and the load average, one process per setting (OpenMP reads the policy when torch loads).

    python bench/cpu_threads.py [--steps 20]

On a busy machine spinning threads take CPU from the work that holds the cores and wait for each other
at every parallel region, so a fit slows down far more than the load alone explains.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(threads: int, steps: int) -> str:
    import torch

    sys.path.insert(0, str(ROOT))
    from searchlab.predictors.renas import ReNASNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, x = ReNASNet(), torch.randn(424, 19, 7, 7)  # one fit's labelled cells as 19 x 7 x 7 tensors
    opt = torch.optim.Adam(net.parameters())
    usage = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731 - user + system seconds
    load, wall, cpu = os.getloadavg()[0], time.perf_counter(), usage()
    for _ in range(steps):
        loss = net(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (f"{os.environ.get('OMP_WAIT_POLICY', '-'):>7} threads={threads} load {load:5.1f}: {steps} steps "
            f"{time.perf_counter() - wall:6.2f} s wall, {usage() - cpu:6.2f} CPU s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--one", nargs=2, metavar=("POLICY", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(measure(int(args.one[1]), args.steps), flush=True)
        return 0
    print(f"{os.cpu_count()} CPUs", flush=True)
    for policy in ("ACTIVE", "PASSIVE"):
        for threads in (2, 1):
            env = dict(os.environ, OMP_WAIT_POLICY=policy)
            subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", policy, str(threads)],
                           env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
