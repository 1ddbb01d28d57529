"""NAS-Bench-101 enumeration: the vectorised walk vs the published plain-Python loop.

The reference is the published algorithm as a loop (build each labelled graph, `hash_module` it,
keep the first graph of each hash), timed on slices of the walk for 6 and 7 vertices and in full
for up to 5 vertices, then extrapolated to all 1,293,208 labelled graphs. The vectorised
enumeration runs in full in the same process. Target: full enumeration <= 30 s on 2 cores.

    nice -n 10 python bench/nasbench101_enumerate.py [--slice 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.nasbench101 import enumeration as E  # noqa: E402

WALK = {2: 1, 3: 6, 4: 90, 5: 3267, 6: 125_145, 7: 1_164_699}  # labelled graphs per vertex count


def reference_seconds(n: int, limit: int | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, graphs) of the published loop over the first `limit` graphs."""
    buckets: dict = {}
    start, cpu = time.perf_counter(), time.process_time()
    count = 0
    for matrix, labeling, h in E.reference_walk(n, limit):
        buckets.setdefault(h, (matrix, labeling))
        count += 1
    return time.perf_counter() - start, time.process_time() - cpu, count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slice", type=int, default=3000, help="labelled graphs of the 6- and 7-vertex walks to time")
    p.add_argument("--workers", type=int, default=2, help="processes for the vectorised hash of 7-vertex cells")
    args = p.parse_args()
    print(f"cpus visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    next(E.reference_walk(3))  # import nasbench_pytorch (and torch) before timing anything

    ref_total = ref_cpu = 0.0
    for n in range(2, 8):
        limit = None if n <= 5 else args.slice
        seconds, cpu, count = reference_seconds(n, limit)
        ref_total += seconds / count * WALK[n]
        ref_cpu += cpu / count * WALK[n]
        print(f"reference loop, {n} vertices: {count:,} graphs in {seconds:.2f} s ({cpu:.2f} s CPU) "
              f"-> {seconds / count * WALK[n]:.1f} s for {WALK[n]:,}")
    print(f"reference loop, all 1,293,208 labelled graphs (extrapolated): {ref_total:.0f} s wall, "
          f"{ref_cpu:.0f} s CPU")

    t0 = os.times()
    start = time.perf_counter()
    result = E.enumerate_cells(workers=args.workers)
    ours = time.perf_counter() - start
    t1 = os.times()
    cpu = (t1.user + t1.system + t1.children_user + t1.children_system) - (
        t0.user + t0.system + t0.children_user + t0.children_system)
    assert result.labelled_graphs == 1_293_208 and len(result.hashes) == 423_624
    assert result.cumulative_counts() == [1, 7, 91, 2532, 64542, 423624]
    print(f"vectorised enumeration ({args.workers} worker(s)): {ours:.1f} s wall, {cpu:.1f} s CPU (all processes); "
          f"{len(result.hashes):,} unique cells; load average now {os.getloadavg()[0]:.1f}")
    print(f"speed-up over the reference loop: {ref_total / ours:.1f}x wall, {ref_cpu / cpu:.1f}x CPU "
          f"(target: full enumeration <= 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
