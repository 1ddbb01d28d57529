"""Every unique NAS-Bench-101 cell with its official hash, as the published enumeration makes them.

The published algorithm (nasbench `generate_graphs.py`) walks, for V = 2..7 vertices, every
upper-triangular bit mask in increasing order, keeps the "full DAGs" (every vertex on an input ->
output path) with at most 9 edges, and every labelling of the interior vertices in
`itertools.product` order; each labelled graph is hashed and the first graph of each hash is kept.
That is 1,293,208 labelled graphs and 423,624 unique cells; as a plain loop about 5 minutes.

Here the same walk is done with arrays: the valid masks are filtered with bit operations, the
isomorphism class of every labelled graph comes from a canonical form (the smallest permuted
adjacency code over the interior-vertex permutations, then the smallest permuted labelling among
the permutations reaching it), the first graph of each class in walk order is its representative,
and only the representatives are hashed, with the vectorised hash of `hashing.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from searchlab.search_spaces.nasbench101 import hashing

MAX_VERTICES = 7
MAX_EDGES = 9
NUM_OPS = 3


@dataclass
class Enumeration:
    """Unique cells in enumeration order (first met first) plus the walk's counts."""

    hashes: np.ndarray        # S32 [N]
    n_vertices: np.ndarray    # uint8 [N]
    adj_bits: np.ndarray      # uint32 [N], bit x + y(y-1)/2 set for an edge x -> y
    ops: np.ndarray           # int8 [N, 7]: -1, interior 0/1/2, -2, then -3 padding
    labelled_graphs: int      # graphs walked, isomorphic copies included
    unique_by_vertices: dict  # V -> unique cells with exactly V vertices

    def cumulative_counts(self) -> list[int]:
        out, total = [], 0
        for v in range(2, MAX_VERTICES + 1):
            total += self.unique_by_vertices.get(v, 0)
            out.append(total)
        return out

    def sorted_by_hash(self) -> "Enumeration":
        order = np.argsort(self.hashes)
        return Enumeration(self.hashes[order], self.n_vertices[order], self.adj_bits[order],
                           self.ops[order], self.labelled_graphs, dict(self.unique_by_vertices))


def _bit_index(x: int, y: int) -> int:
    return x + y * (y - 1) // 2


def valid_masks(n: int, max_edges: int = MAX_EDGES) -> np.ndarray:
    """Bit masks (increasing) of n-vertex upper-triangular full DAGs with at most max_edges edges."""
    bits = np.arange(2 ** (n * (n - 1) // 2), dtype=np.uint32)
    keep = np.bitwise_count(bits) <= max_edges
    for v in range(n):
        if v < n - 1:  # every vertex but the output has an out-edge
            row = sum(1 << _bit_index(v, y) for y in range(v + 1, n))
            keep &= (bits & np.uint32(row)) != 0
        if v > 0:  # every vertex but the input has an in-edge
            col = sum(1 << _bit_index(x, v) for x in range(v))
            keep &= (bits & np.uint32(col)) != 0
    return bits[keep]


def masks_to_matrices(masks: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((len(masks), n, n), np.uint8)
    b = masks.astype(np.int64)
    for y in range(1, n):
        for x in range(y):
            m[:, x, y] = (b >> _bit_index(x, y)) & 1
    return m


def labelings(n: int) -> np.ndarray:
    """int8 [3^(n-2), n-2] interior labels in itertools.product order (first vertex slowest)."""
    k = n - 2
    idx = np.arange(NUM_OPS ** k)
    return np.stack([(idx // NUM_OPS ** (k - 1 - j)) % NUM_OPS for j in range(k)], axis=1).astype(np.int8) \
        if k else np.zeros((1, 0), np.int8)


def _class_keys(mats: np.ndarray, n: int) -> np.ndarray:
    """int64 [M, 3^(n-2)]: equal exactly when two labelled graphs are isomorphic (same n)."""
    k = n - 2
    perms = [np.array((0,) + p + (n - 1,)) for p in itertools.permutations(range(1, n - 1))]
    weights = (np.int64(1) << np.arange(n * n, dtype=np.int64)).reshape(n, n)
    codes = np.stack([(mats[:, s][:, :, s].astype(np.int64) * weights).sum((1, 2)) for s in perms], axis=1)
    best = codes.min(axis=1)
    labs = labelings(n).astype(np.int64)
    place = NUM_OPS ** np.arange(k - 1, -1, -1, dtype=np.int64)
    # permuted labelling index: new interior vertex i takes the label of old vertex s[i]
    perm_label = np.stack([(labs[:, s[1:n - 1] - 1] * place).sum(1) for s in perms])  # [P, 3^k]
    canon = np.full((len(mats), NUM_OPS ** k), np.iinfo(np.int64).max, np.int64)
    for p in range(len(perms)):
        hit = np.flatnonzero(codes[:, p] == best)
        if len(hit):
            canon[hit] = np.minimum(canon[hit], perm_label[p][None, :])
    return best[:, None] * NUM_OPS ** k + canon


def _hash_chunks(mats: np.ndarray, labs: np.ndarray, pool, bar, chunk: int = 30000) -> np.ndarray:
    """Hash graphs in chunks (over a process pool when given), advancing the progress bar."""
    bounds = list(range(0, len(mats), chunk)) or [0]
    jobs = [(mats[a:a + chunk], labs[a:a + chunk]) for a in bounds]
    results = pool.imap(_hash_job, jobs) if pool is not None else map(_hash_job, jobs)
    out = []
    for part in results:
        out.append(part)
        if bar is not None:
            bar.update(len(part))
    return np.concatenate(out) if out else np.zeros(0, "S32")


def _first_of_each(hashes: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct hash, in order (all of them when distinct)."""
    from searchlab.search_spaces.nasbench101.table import hex_to_digests

    hi = np.ascontiguousarray(hex_to_digests(hashes)[:, :8]).view(">u8").ravel()
    if len(np.unique(hi)) == len(hi):  # 64 distinct leading bits: every hash is distinct
        return np.arange(len(hashes))
    _, keep = np.unique(hashes, return_index=True)
    return np.sort(keep)


def _hash_job(job: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.asarray(hashing.hash_graphs(*job), dtype="S32")


def enumerate_cells(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES, progress: bool = False,
                    workers: int = 1) -> Enumeration:
    """All unique cells up to `max_vertices` with their official hashes, in published walk order.

    `workers` > 1 hashes chunks of cells in that many forked processes.
    """
    plans, labelled = [], 0
    for n in range(2, max_vertices + 1):
        masks = valid_masks(n, max_edges)
        mats = masks_to_matrices(masks, n)
        nlab = NUM_OPS ** (n - 2)
        labelled += len(masks) * nlab
        keys = _class_keys(mats, n).ravel()  # walk order: mask-major, labelling-minor
        _, first = np.unique(keys, return_index=True)
        first.sort()  # the first graph of each class, in walk order
        mi, li = np.divmod(first, nlab)
        labs = np.full((len(first), n), -1, np.int8)
        labs[:, -1] = -2
        labs[:, 1:n - 1] = labelings(n)[li]
        plans.append((n, masks[mi], mats[mi], labs))
    bar = pool = None
    if progress:
        from searchlab import progress as progress_lines
        bar = progress_lines.bar(total=sum(len(p[1]) for p in plans), desc="hashing NAS-Bench-101 cells", unit="cell",
                                 show=True, unit_scale=True, leave=True)
    if workers > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(workers)
    parts, unique = [], {}
    try:
        for n, masks, mats, labs in plans:
            hashes = _hash_chunks(mats, labs, pool, bar)
            # the walk keeps the first graph of each hash (the same as the classes unless WL collides)
            keep = _first_of_each(hashes)
            ops = np.full((len(keep), MAX_VERTICES), -3, np.int8)
            ops[:, :n] = labs[keep]
            parts.append((hashes[keep], np.full(len(keep), n, np.uint8), masks[keep].astype(np.uint32), ops))
            unique[n] = len(keep)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    return Enumeration(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                       np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                       labelled, unique)


def reference_walk(n: int, limit: int | None = None):
    """The published loop for one vertex count, as plain Python (for benchmarks and tests).

    Yields (matrix, labeling, hash) for each labelled graph, `limit` graphs at most.
    """
    from nasbench_pytorch.model import graph_util

    count = 0
    for bits in range(2 ** (n * (n - 1) // 2)):
        matrix = np.fromfunction(graph_util.gen_is_edge_fn(bits), (n, n), dtype=np.int8)
        if not graph_util.is_full_dag(matrix) or graph_util.num_edges(matrix) > MAX_EDGES:
            continue
        for labeling in itertools.product(*[range(NUM_OPS) for _ in range(n - 2)]):
            labeling = [-1] + list(labeling) + [-2]
            yield matrix, labeling, graph_util.hash_module(matrix, labeling)
            count += 1
            if limit is not None and count >= limit:
                return
