import json

import numpy as np
import pytest

from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.search_spaces.nasbench101.evaluator import TableEvaluator, TableEvaluatorConfig, finalize
from searchlab.search_spaces.nasbench101.space import NasBench101Space, NB101SpaceConfig
from searchlab.search_spaces.nasbench101.table import load_table
from searchlab.errors import ConfigError
from searchlab.protocols import Context


@pytest.fixture(scope="module")
def nb101_cache(tmp_path_factory):
    """One SQLite copy of the bundled table for the whole test session (built on first use)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "nb101-cache"))
        yield


@pytest.fixture(scope="module")
def space():
    return NasBench101Space()


def test_sample_is_uniform_over_table_rows(space):
    rng = np.random.default_rng(0)
    keys = [space.key(space.sample(rng)) for _ in range(300)]
    rows = space.table.index_of(np.array(keys))
    assert (rows >= 0).all() and len(set(keys)) == 300
    # uniform over cells: about 359082/423624 = 85% of samples have 7 vertices
    sevens = (space.table.n_vertices[rows] == 7).mean()
    assert 0.78 < sevens < 0.92


def test_mutate_is_valid_new_and_local(space):
    rng = np.random.default_rng(1)
    parent = space.sample(rng)
    same_rng = np.random.default_rng(5)
    children = [space.mutate(parent, rng) for _ in range(60)]
    for c in children:
        assert nb_spec.is_valid(c) and space.key(c) != space.key(parent)
    assert space.mutate(parent, np.random.default_rng(5)) == space.mutate(parent, same_rng)
    # one edge and one op change in expectation: most children stay close to the parent
    p = space.table.index_of(space.key(parent))
    small = [c for c in children if len(c["ops"]) == len(parent["ops"])]
    diffs = [np.abs(np.asarray(c["matrix"]) - np.asarray(parent["matrix"])).sum() for c in small]
    assert np.median(diffs) <= 2 and p >= 0
    # a pruned 2-vertex cell can still grow
    tiny = {"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}
    grown = [space.mutate(tiny, rng) for _ in range(20)]
    assert max(len(g["ops"]) for g in grown) > 2


def test_describe_matches_table_flops(space):
    g = space.table.genome(777)
    d = space.describe(g)
    assert d["flops"] == pytest.approx(float(space.table.flops[777]), rel=0.01)
    assert d["hash"] == space.table.hashes[777] and d["params"] > 1e5


def test_space_builds_the_configured_network(space):
    import torch

    small = NasBench101Space(NB101SpaceConfig(stem_channels=8, num_stacks=2, modules_per_stack=1), table=space.table)
    net = small.build_network(space.table.genome(3), num_classes=4)
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 4)
    with pytest.raises(ConfigError, match="at least 1"):
        NB101SpaceConfig(num_stacks=0)


def test_table_evaluator(nb101_cache, space):
    ev = TableEvaluator(TableEvaluatorConfig())
    assert ev.objectives == {"accuracy": "max", "flops": "min"}
    g = space.table.genome(4242)
    r = ev.evaluate(g, seed=1)
    assert r.ok and r.objectives["accuracy"] == pytest.approx(float(space.table.test_accuracy[4242]))
    assert r.cost == {"epochs": 108.0}
    bad = ev.evaluate({"matrix": [[0, 0], [0, 0]], "ops": ["input", "output"]}, seed=1)
    assert bad.status == "failed" and "not reachable" in bad.error
    best = int(np.argmax(space.table.test_accuracy))
    top = ev.evaluate(space.table.genome(best), seed=0)
    summary = finalize(space, ev, {"id": 1, "key": space.table.hashes[best], "genome": space.table.genome(best),
                                   "result": top}, Context())
    assert summary["rank_in_table"] == 1 and summary["best_accuracy"] == pytest.approx(0.94661, abs=1e-5)
    with pytest.raises(ConfigError):
        TableEvaluator(TableEvaluatorConfig(table_epochs=12)).evaluate(g, seed=0)


def test_random_and_evolution_search_end_to_end(nb101_cache, tmp_path, capsys):
    from searchlab import cli

    for strategy in ("random", "evolution"):
        run = tmp_path / strategy
        rc = cli.main(["search", "nasbench101", "--strategy", strategy, "--max-evals", "40", "--seed", "3",
                       "--run", str(run), "--quiet", "--json"])
        assert rc == 0
        final = json.loads(capsys.readouterr().out)["final"]
        assert final["cells_in_table"] == 423_624
        assert final["rank_in_table"] == load_table().rank_of(final["best_accuracy"])
        assert final["rank_in_table"] < 423_624 // 10  # 40 queries reach the top 10% of the table
