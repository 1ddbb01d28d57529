import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from searchlab.predictors.features import (CONV3X3, INPUT, MAXPOOL, OP_CODES, OUTPUT, PAD, Cells, cached_vertex_costs,
                                 feature_tensor, fixed_topological_orders, random_topological_orders,
                                 reorder_features, vertex_channels,
                                 vertex_costs)
from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.predictors.table import cells_from_genomes
from searchlab.search_spaces.nasbench101.network import build_network, cell_channels
from searchlab.search_spaces.nasbench101.network import vertex_channels as nb_vertex_channels


def _real_vertices(cells, i):
    return np.flatnonzero(cells.ops[i] != 0)


def test_vertex_channels_match_nasbench_rule(table):
    rows = np.random.default_rng(0).choice(len(table), 150, replace=False)
    cells = table.cells.take(rows)
    for cin, cout in [(128, 128), (128, 256), (512, 512)]:
        ours = vertex_channels(cells.adjacency, cin, cout)
        for j, row in enumerate(rows):
            expect = nb_vertex_channels(table.table.genome(int(row)), cin, cout)
            assert ours[j][_real_vertices(cells, j)].tolist() == expect


@pytest.mark.parametrize("row", [0, 5, 100_000, 423_000])
def test_closed_form_costs_match_the_real_network(table, row):
    """Per-vertex MACs (FlopCounterMode) and parameters of every cell of the built network."""
    genome = table.table.genome(row)
    net = build_network(genome).eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, 32, 32))
    counts = counter.get_flop_counts()
    flops, params = vertex_costs(table.cells.adjacency[row:row + 1], table.cells.ops[row:row + 1])
    verts = _real_vertices(table.cells, row)
    cell_layers = sorted(net.cell_indices)
    assert len(cell_layers) == len(cell_channels()) == flops.shape[1]
    for c, layer in enumerate(cell_layers):
        for t, v in enumerate(verts):
            if t == 0:
                assert flops[0, c, v] == 0 and params[0, c, v] == 0
                continue
            last = t == len(verts) - 1
            names = [f"layers.{layer}.input_op.{t}"] + ([] if last else [f"layers.{layer}.vertex_op.{t}"])
            n_params = sum(p.numel() for n in names for k, p in net.get_submodule(n).named_parameters() if k != "a")
            counted = names + ([f"layers.{layer}.last_inop"] if last else [])
            macs = sum(sum(counts.get("Network." + n, {}).values()) for n in counted) // 2
            assert params[0, c, v] == pytest.approx(n_params, rel=1e-6)
            assert flops[0, c, v] == pytest.approx(macs, rel=1e-6)


def test_feature_tensor_layout(table):
    cells = table.cells.take([0, 7])
    x = feature_tensor(cells)
    assert x.shape == (2, 19, 7, 7) and x.dtype == np.float32
    a = cells.adjacency[0].astype(np.float32)
    assert np.array_equal(x[0, 0], a * cells.ops[0][None, :].astype(np.float32))
    assert np.all(x[:, :, :, 0] == 0)  # nothing flows into the input
    assert np.all(x[:, 1:, :, :][np.broadcast_to(cells.adjacency[:, None] == 0, x[:, 1:].shape)] == 0)
    assert cells.ops[0, 0] == INPUT and cells.ops[0, 6] == OUTPUT


def test_padding_puts_output_last_and_matches_genomes(table):
    small = np.flatnonzero(table.table.n_vertices == 4)[:5]
    from_genomes = cells_from_genomes([table.table.genome(int(r)) for r in small])
    assert np.array_equal(from_genomes.adjacency, table.cells.adjacency[small])
    assert np.array_equal(from_genomes.ops, table.cells.ops[small])
    assert np.all(from_genomes.ops[:, 3:6] == 0) and np.all(from_genomes.ops[:, 6] == OUTPUT)
    g = {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}
    c = cells_from_genomes([g])
    assert c.adjacency[0, 0, 6] == 1 and c.adjacency[0, 1, 6] == 1 and c.ops[0, 1] == CONV3X3


def test_maxpool_vertex_is_free():
    adj = np.zeros((1, 7, 7), np.uint8)
    adj[0, 0, 1] = adj[0, 1, 6] = 1
    ops = np.array([[INPUT, MAXPOOL, 0, 0, 0, 0, OUTPUT]], np.int8)
    flops, params = vertex_costs(adj, ops)
    # vertex 1 costs only its 1x1 projection from the cell input (128 -> 128 channels at 32x32)
    assert flops[0, 0, 1] == 128 * 128 * 1024 and params[0, 0, 1] == 128 * 128 + 2 * 128


def test_cache_is_written_reused_and_rebuilt_when_damaged(tmp_path, monkeypatch, table):
    monkeypatch.setenv("SEARCHLAB_CACHE_DIR", str(tmp_path))
    cells = table.cells.take(np.arange(50))
    f1, p1 = cached_vertex_costs(cells, name="t")
    files = list(tmp_path.glob("t_vertex_costs_*.npz"))
    assert len(files) == 1
    f2, _ = cached_vertex_costs(cells, name="t")
    assert np.array_equal(f1, f2)
    files[0].write_bytes(b"not an npz")
    f3, p3 = cached_vertex_costs(cells, name="t")
    assert np.array_equal(f1, f3) and np.array_equal(p1, p3)
    other = Cells(cells.adjacency[:10], cells.ops[:10])
    cached_vertex_costs(other, name="t")
    assert len(list(tmp_path.glob("t_vertex_costs_*.npz"))) == 2  # a different table never reads a stale file


@pytest.mark.parametrize("draw", [lambda cells: random_topological_orders(cells, np.random.default_rng(1)),
                                  lambda cells: fixed_topological_orders(cells, view=1)], ids=["random", "fixed"])
def test_topological_orders_encode_the_same_cells(table, draw):
    rows = np.random.default_rng(0).choice(len(table), 400, replace=False)
    cells = table.cells.take(rows)
    orders = draw(cells)
    assert (orders != np.arange(7)).any(axis=1).mean() > 0.2  # many cells do move
    moved = reorder_features(torch.from_numpy(feature_tensor(cells)), orders).numpy()
    adjacency = (moved[:, 0] != 0).astype(np.uint8)  # channel 0 is A * op type, types are non-zero
    ops = np.take_along_axis(cells.ops, orders, axis=1)
    assert not np.tril(adjacency).any() and np.array_equal(adjacency.sum((1, 2)), cells.adjacency.sum((1, 2)))
    assert np.all(ops[:, 0] == INPUT) and np.all(ops[:, 6] == OUTPUT)
    # costs move with their vertices; encoding the re-ordered cell from scratch agrees up to which
    # vertices get the remainder when channels do not split evenly (NAS-Bench-101 gives it by index)
    x = feature_tensor(cells)
    scratch = feature_tensor(Cells(adjacency, ops))
    assert np.array_equal(scratch[:, 0], moved[:, 0])
    assert np.allclose(scratch, moved, rtol=0.1) and np.allclose(moved.sum((2, 3)), x.sum((2, 3)), rtol=1e-6)
    names = {code: name for name, code in OP_CODES.items()}
    for i in range(len(cells)):  # and it is the same network: same NAS-Bench-101 hash
        real = np.flatnonzero(ops[i] != PAD)
        genome = {"matrix": adjacency[i][np.ix_(real, real)].tolist(), "ops": [names[int(o)] for o in ops[i][real]]}
        assert nb_spec.spec_hash(genome) == table.table.hashes[rows[i]]


def test_fixed_orders_depend_on_the_cell_and_view_only(table):
    cells = table.cells.take(np.random.default_rng(2).choice(len(table), 300, replace=False))
    whole = fixed_topological_orders(cells, view=1)
    part = fixed_topological_orders(cells.take(np.arange(40, 90)), view=1)
    assert np.array_equal(whole[40:90], part)  # whatever else is in the batch
    assert np.array_equal(whole, fixed_topological_orders(cells, view=1))
    assert (whole != fixed_topological_orders(cells, view=2)).any(axis=1).mean() > 0.1
