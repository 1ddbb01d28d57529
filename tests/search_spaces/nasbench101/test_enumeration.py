import itertools

import networkx as nx
import numpy as np
import pytest
from nasbench_pytorch.model.graph_util import hash_module

from searchlab.search_spaces.nasbench101 import enumeration as E
from searchlab.search_spaces.nasbench101.hashing import hash_graphs


def _walk_graphs(n):
    """All labelled graphs of the published walk for n vertices, in walk order (matrices, labels)."""
    masks = E.valid_masks(n)
    mats = E.masks_to_matrices(masks, n)
    labs = E.labelings(n)
    k = len(labs)
    full = np.full((len(masks) * k, n), -1, np.int64)
    full[:, -1] = -2
    full[:, 1:n - 1] = np.tile(labs, (len(masks), 1))
    return np.repeat(mats, k, axis=0), full, np.repeat(np.arange(len(masks)), k)


def test_vectorised_hash_is_the_official_hash():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 6, 7):
        mats, labs, _ = _walk_graphs(n) if n < 7 else (None, None, None)
        if n == 7:
            masks = E.valid_masks(7)[rng.choice(4793, 60, replace=False)]
            mats = np.repeat(E.masks_to_matrices(masks, 7), 3, axis=0)
            labs = np.full((len(mats), 7), -1)
            labs[:, -1] = -2
            labs[:, 1:6] = rng.integers(0, 3, (len(mats), 5))
        pick = rng.choice(len(mats), min(120, len(mats)), replace=False)
        ours = hash_graphs(mats[pick], labs[pick])
        ref = [hash_module(mats[i].astype(np.int64), labs[i].tolist()) for i in pick]
        assert ours == ref


def test_small_enumeration_equals_published_loop():
    ours = E.enumerate_cells(max_vertices=5)
    buckets, total = {}, 0
    for n in range(2, 6):
        for matrix, labeling, h in E.reference_walk(n):
            total += 1
            buckets.setdefault(h, (np.asarray(matrix), labeling))
    assert ours.labelled_graphs == total == 1 + 6 + 90 + 3267
    assert ours.cumulative_counts()[:4] == [1, 7, 91, 2532]
    assert [h.decode() for h in ours.hashes] == list(buckets)  # same hashes, same first-met order
    for h, nv, bits, ops in zip(ours.hashes[::97], ours.n_vertices[::97], ours.adj_bits[::97], ours.ops[::97]):
        matrix, labeling = buckets[h.decode()]
        n = int(nv)
        assert np.array_equal(E.masks_to_matrices(np.array([bits]), n)[0], matrix)
        assert ops[:n].tolist() == labeling


def test_class_counts_of_the_full_space():
    """423,624 classes (1,293,208 labelled graphs) from the canonical forms alone."""
    labelled, unique = 0, []
    for n in range(2, 8):
        masks = E.valid_masks(n)
        keys = E._class_keys(E.masks_to_matrices(masks, n), n)
        labelled += keys.size
        unique.append(len(np.unique(keys)))
    assert labelled == 1_293_208
    assert list(itertools.accumulate(unique)) == [1, 7, 91, 2532, 64542, 423624]


def _nx(matrix, labels):
    g = nx.DiGraph()
    for v, lab in enumerate(labels):
        g.add_node(v, op=int(lab))
    g.add_edges_from(zip(*np.nonzero(matrix)))
    return g


def test_same_hash_exactly_when_isomorphic():
    """On a sample of 6-vertex graphs: equal hashes <=> networkx finds a label-preserving isomorphism."""
    rng = np.random.default_rng(1)
    mats, labs, _ = _walk_graphs(6)
    keys = E._class_keys(E.masks_to_matrices(E.valid_masks(6), 6), 6).ravel()
    # graphs from a few big classes plus random ones, so both equal and different hashes occur
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    big = np.flatnonzero(counts[inverse] >= 4)
    pick = np.concatenate([rng.choice(big, 40, replace=False), rng.choice(len(keys), 40, replace=False)])
    cls = np.unique(inverse[pick])[:6]
    pick = np.concatenate([pick, np.flatnonzero(np.isin(inverse, cls))[:30]])
    hashes = hash_graphs(mats[pick], labs[pick])
    match = nx.algorithms.isomorphism.categorical_node_match("op", None)
    same_seen = diff_seen = 0
    for a, b in itertools.combinations(range(len(pick)), 2):
        if rng.random() > 0.08 and hashes[a] != hashes[b]:
            continue  # check every equal pair, a sample of the rest
        iso = nx.is_isomorphic(_nx(mats[pick[a]], labs[pick[a]]), _nx(mats[pick[b]], labs[pick[b]]), node_match=match)
        assert iso == (hashes[a] == hashes[b])
        same_seen += iso
        diff_seen += not iso
    assert same_seen > 20 and diff_seen > 100


@pytest.mark.slow
def test_full_enumeration_matches_bundled_table():
    from searchlab.search_spaces.nasbench101.table import load_table

    result = E.enumerate_cells()
    assert result.labelled_graphs == 1_293_208
    assert result.cumulative_counts() == [1, 7, 91, 2532, 64542, 423624]
    ordered = result.sorted_by_hash()
    table = load_table()
    assert np.array_equal(ordered.hashes, table._hex)
    assert np.array_equal(ordered.adj_bits, table.adj_bits)
    assert np.array_equal(ordered.ops, table.ops)
