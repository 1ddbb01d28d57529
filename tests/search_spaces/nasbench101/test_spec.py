import numpy as np
import pytest

from searchlab.search_spaces.nasbench101 import network, spec
from searchlab.errors import InvalidArchitecture

C3, C1, MP = spec.OPS
# row 0 of the NAS-Bench-101 table (hash and FLOPs published with the data set)
ROW0 = {"matrix": [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1],
                   [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
                   [0, 0, 0, 0, 0, 0, 0]],
        "ops": ["input", C3, MP, C3, C3, C1, "output"]}


def test_row0_hash_matches_official():
    assert spec.spec_hash(ROW0) == "00005c142e6f48ac74fdcf73e3439874"


def test_isomorphic_cells_share_hash():
    a = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], "ops": ["input", C3, C1, "output"]}
    b = {"matrix": a["matrix"], "ops": ["input", C1, C3, "output"]}
    c = {"matrix": a["matrix"], "ops": ["input", C1, C1, "output"]}
    assert spec.spec_hash(a) == spec.spec_hash(b) != spec.spec_hash(c)


def test_pruning_drops_dangling_vertex():
    g = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], "ops": ["input", C3, MP, "output"]}
    v = spec.validate(g)
    assert v == {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", C3, "output"]}
    assert spec.spec_hash(g) == spec.spec_hash(v)


@pytest.mark.parametrize("genome, words", [
    ([1, 2], "JSON object"),
    ({"matrix": [[0, 1], [0]], "ops": ["input", "output"]}, "square"),
    ({"matrix": [[0, 2], [0, 0]], "ops": ["input", "output"]}, "0 or 1"),
    ({"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}, "upper triangular"),
    ({"matrix": [[0, 1], [0, 0]], "ops": ["input"]}, "one op per vertex"),
    ({"matrix": np.triu(np.ones((8, 8), int), 1).tolist(), "ops": ["input"] + [C3] * 6 + ["output"]}, "at most 7"),
    ({"matrix": np.triu(np.ones((7, 7), int), 1).tolist(), "ops": ["input"] + [C3] * 5 + ["output"]}, "edges; at most 9"),
    ({"matrix": [[0, 1], [0, 0]], "ops": ["output", "input"]}, "first op"),
    ({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]}, "unknown op"),
    ({"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", C3, "output"]}, "not reachable"),
])
def test_invalid_specs_name_the_rule(genome, words):
    with pytest.raises(InvalidArchitecture, match=words):
        spec.validate(genome)
    assert not spec.is_valid(genome)


def test_network_flops_match_table_row0_and_forward_runs():
    import torch

    stats = network.network_stats(ROW0)
    assert abs(stats["flops"] / 1.2669143e9 - 1) < 0.01
    net = network.build_network(ROW0, num_classes=5, stem_channels=8, num_stacks=2, modules_per_stack=1)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
    assert network.vertex_channels(ROW0, 128, 128) == [128, 64, 64, 64, 64, 64, 128]
    assert network.cell_channels()[3] == (128, 256)
