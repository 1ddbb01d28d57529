"""NAS-Bench-101 enumeration: the vectorised walk vs the published plain-Python loop.

The reference is the published algorithm as a plain loop (build and check the matrix of every bit
mask, `hash_module` every labelled graph of the valid ones, keep the first graph of each hash),
timed on random samples of masks and graphs for each vertex count and scaled to the full walk
(all 2^21 + ... masks, 1,293,208 labelled graphs). The vectorised enumeration runs in full in the
same process. CPU seconds are reported beside wall seconds because the machine is shared.
Target: full enumeration <= 30 s on 2 cores.

    nice -n 10 python bench/nasbench101_enumerate.py [--slice 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlab.search_spaces.nasbench101 import enumeration as E  # noqa: E402

WALK = {2: 1, 3: 6, 4: 90, 5: 3267, 6: 125_145, 7: 1_164_699}  # labelled graphs per vertex count


def reference_sample(n: int, sample: int, rng: np.random.Generator) -> tuple[float, float]:
    """Estimated (wall, CPU) seconds of the published loop for n vertices, from random samples.

    The loop has two parts, timed separately and scaled by their counts: building and checking
    the matrix of every one of the 2^(n(n-1)/2) bit masks, and hashing every labelled graph of
    the valid masks (`hash_module`) into the bucket dict.
    """
    from nasbench_pytorch.model import graph_util

    n_masks = 2 ** (n * (n - 1) // 2)
    masks = rng.choice(n_masks, min(sample, n_masks), replace=False)
    wall, cpu = time.perf_counter(), time.process_time()
    for bits in masks.tolist():
        matrix = np.fromfunction(graph_util.gen_is_edge_fn(bits), (n, n), dtype=np.int8)
        graph_util.is_full_dag(matrix) and graph_util.num_edges(matrix) <= E.MAX_EDGES
    mask_wall = (time.perf_counter() - wall) / len(masks) * n_masks
    mask_cpu = (time.process_time() - cpu) / len(masks) * n_masks

    valid = E.valid_masks(n)
    labs = E.labelings(n)
    pick = rng.choice(len(valid) * len(labs), min(sample, WALK[n]), replace=False)
    mats = E.masks_to_matrices(valid[pick // len(labs)], n).astype(np.int8)
    graphs = [(mats[i], [-1] + labs[j].tolist() + [-2]) for i, j in enumerate(pick % len(labs))]
    buckets: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for matrix, labeling in graphs:
        buckets.setdefault(graph_util.hash_module(matrix, labeling), (matrix, labeling))
    hash_wall = (time.perf_counter() - wall) / len(graphs) * WALK[n]
    hash_cpu = (time.process_time() - cpu) / len(graphs) * WALK[n]
    return mask_wall + hash_wall, mask_cpu + hash_cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slice", type=int, default=3000, help="masks and labelled graphs sampled per vertex count")
    p.add_argument("--workers", type=int, default=2, help="processes for the vectorised hash of 7-vertex cells")
    args = p.parse_args()
    print(f"cpus visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    import nasbench_pytorch.model  # noqa: F401 - import torch before timing anything

    rng = np.random.default_rng(0)
    ref_total = ref_cpu = 0.0
    for n in range(2, 8):
        wall, cpu = reference_sample(n, args.slice, rng)
        ref_total += wall
        ref_cpu += cpu
        print(f"reference loop, {n} vertices ({WALK[n]:,} labelled graphs), from {args.slice:,} sampled masks "
              f"and graphs: {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"reference loop, all 1,293,208 labelled graphs (estimated): {ref_total:.0f} s wall, {ref_cpu:.0f} s CPU")

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
