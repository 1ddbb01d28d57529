"""NAS-Bench-201: arch strings, the functional key against the published unique count, the bundled table,
the query command and searches on it."""

import json
from pathlib import Path

import numpy as np
import pytest

from searchlab import cli
from searchlab.search_spaces.nasbench201 import spec
from searchlab.search_spaces.nasbench201.space import NasBench201Space, TableEvaluator201
from searchlab.search_spaces.nasbench201.table import DATASETS, build, load_table
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.store.run_store import RunStore

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nasbench201"


def test_the_bundled_table_in_official_order():
    table = load_table()
    assert len(table) == 15625 and len({table.arch(i) for i in range(len(table))}) == 15625
    assert table.arch(6111) == BEST and table.index(BEST) == 6111
    assert table.test_accuracy[6111] == pytest.approx(0.943733, abs=1e-6) and table.ranks[6111] == 1
    assert all(table.index(table.arch(i)) == i for i in range(0, 15625, 97))
    assert 0.09 < table.test_accuracy.min() < 0.11  # the chance-level cells (output always zero)


def test_arch_strings_parse_format_and_refuse_malformed_input():
    ops = spec.parse(BEST)
    assert ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1")
    assert spec.format_arch(ops) == BEST and spec.validate(list(ops)) == BEST
    for bad, message in [(BEST.replace("skip_connect", "conv5x5"), "unknown operation 'conv5x5'"),
                         ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "has 2 node groups"),
                         (BEST.replace("nor_conv_1x1~2", "nor_conv_1x1~1"), "must read from node 2"),
                         (BEST.replace("|+|skip_connect~0", "|+|skip_connect~0|none~0"), "has 4 inputs"),
                         (42, "arch string like"), (["none"] * 5, "6 edge operations")]:
        with pytest.raises(InvalidArchitecture, match=message):
            spec.validate(bad)


def test_the_functional_key_and_the_published_unique_count():
    table = load_table()
    archs = [table.arch(i) for i in range(len(table))]
    # the finer functional rule: 4,930 classes; the authors' coarser rule gives the published 6,466
    assert len(set(table.keys)) == 4930
    assert len({spec.authors_unique_string(spec.parse(a)) for a in archs}) == 6466
    # equal functions, equal keys: a skip before a conv is the conv; unordered sums; dead branches vanish
    conv = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert spec.unique_key("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|") == spec.unique_key(conv)
    assert spec.unique_key("|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|") == spec.unique_key(conv)
    assert spec.unique_key("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|") == spec.unique_key(
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # the output is zero either way
    # ...and different functions, different keys
    assert spec.unique_key(conv) != spec.unique_key(conv.replace("nor_conv_3x3", "nor_conv_1x1"))
    assert spec.unique_key(conv) != spec.unique_key("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")


def test_mutation_changes_the_function_and_the_evaluator_reads_the_table():
    space, rng = NasBench201Space(), np.random.default_rng(0)
    cell = space.sample(rng)
    for _ in range(50):
        child = space.mutate(cell, rng)
        assert space.key(child) != space.key(cell)
        assert sum(a != b for a, b in zip(spec.parse(child), spec.parse(cell))) == 1  # one edge changed
        cell = child
    result = TableEvaluator201().evaluate(BEST, seed=0)
    assert result.ok and result.objectives["accuracy"] == pytest.approx(0.943733, abs=1e-6)


def test_query_command_and_bad_input(capsys):
    assert cli.main(["nasbench201", "query", "--index", "6111", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == BEST and out["rank_by_test_accuracy"] == 1 and out["equivalent_cells"] == 1
    assert cli.main(["nasbench201", "query", "--arch", BEST]) == 0
    assert "rank        1 of 15,625" in capsys.readouterr().out
    for argv, message in [(["--index", "15625"], "out of range"), (["--index", "-1"], "out of range"),
                          (["--arch", BEST.replace("none", "zero").replace("skip_connect", "skip")], "unknown operation"),
                          (["--arch", "|nor_conv_3x3~0|"], "node groups")]:
        assert cli.main(["nasbench201", "query", *argv]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err
    with pytest.raises(ConfigError):
        load_table().check_index(20000)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_searches_run_and_resume_identically(strategy, tmp_path, capsys):
    common = ["search", "nasbench201", "--strategy", strategy, "--seed", "3", "--quiet", "--json"]
    assert cli.main([*common, "--max-evals", "60", "--run", str(tmp_path / "whole")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"]["cells_in_table"] == 15625 and summary["final"]["rank_in_table"] >= 1
    assert cli.main([*common, "--max-evals", "25", "--run", str(tmp_path / "split")]) == 0
    assert cli.main(["resume", str(tmp_path / "split"), "--max-evals", "60", "--quiet"]) == 0

    def trials(run):
        with RunStore.open(run) as store:
            return [(t.key, t.genome, t.result.objectives) for t in store.trials()]

    assert trials(tmp_path / "split") == trials(tmp_path / "whole")
    assert len({k for k, _, _ in trials(tmp_path / "whole")}) == 60  # 60 functionally distinct cells queried


def test_the_network_matches_the_benchmark_sizes():
    import torch

    space = NasBench201Space()
    # parameter counts of the benchmark's C = 16, N = 5 networks (the release lists 1.5316, 0.0733 and
    # 1.0735 MB of parameters for these cells)
    for ops, params in [(["nor_conv_3x3"] * 6, 1_531_546), (["none"] * 6, 73_306), (list(spec.parse(BEST)), 1_073_466)]:
        net = space.build_network(spec.format_arch(ops))
        assert sum(p.numel() for p in net.parameters()) == params
    net = space.build_network(BEST)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.slow
def test_cells_train_on_real_images_through_the_train_evaluator(tmp_path, capsys):
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "cifar10_mini"
    assert cli.main(["search", "nasbench201", "--evaluator", "train", "--data", f"imagefolder:{data}",
                     "--channels", "4", "--cells-per-stage", "1", "--strategy", "random", "--max-evals", "2",
                     "--epochs", "1", "--seed", "0", "--run", str(tmp_path / "r"), "--quiet", "--json"]) == 0
    with RunStore.open(tmp_path / "r") as store:
        trials = store.trials()
    assert len(trials) == 2 and all(t.result.ok and 0 <= t.result.objectives["accuracy"] <= 1 for t in trials)
    assert all(t.result.objectives["params"] > 0 for t in trials)


# the facts of ../shared/data/README.md, for each label the table bundles
BEST_OF = {"cifar10": (6111, 0.943733, BEST),
           "cifar100": (9930, 0.735133, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                                        "nor_conv_3x3~1|nor_conv_3x3~2|"),
           "imagenet16-120": (857, 0.473111, None),
           "cifar10-valid": (1459, 0.915233, None)}


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_each_data_set_and_its_best_cell(dataset, capsys):
    table = load_table(dataset=dataset)
    index, accuracy, arch = BEST_OF[dataset]
    assert table.dataset == dataset and np.array_equal(table.ops, load_table().ops)
    assert int(np.argmax(table.test_accuracy)) == index and table.ranks[index] == 1
    assert table.test_accuracy[index] == pytest.approx(accuracy, abs=1e-6)
    assert cli.main(["nasbench201", "query", "--best", "--dataset", dataset, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["index"] == index and out["dataset"] == dataset and out["rank_by_test_accuracy"] == 1
    if arch:
        assert out["arch"] == arch
    result = TableEvaluator201(dataset=dataset).evaluate(table.arch(index), seed=0)
    assert result.objectives["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_the_labels_differ_as_data_sets_do():
    c10, c100, im = (load_table(dataset=d).test_accuracy for d in ("cifar10", "cifar100", "imagenet16-120"))
    assert np.median(c10) > np.median(c100) > np.median(im)  # 10 classes, 100, 120 at 16x16
    assert cli.main(["nasbench201", "query", "--index", "6111", "--dataset", "cifar1000"]) == 2


def test_search_on_another_data_set(tmp_path, capsys):
    run = tmp_path / "c100"
    assert cli.main(["search", "nasbench201", "--strategy", "evolution", "--dataset", "cifar100", "--seed", "1",
                     "--max-evals", "40", "--quiet", "--json", "--run", str(run)]) == 0
    final = json.loads(capsys.readouterr().out)["final"]
    assert final["dataset"] == "cifar100" and final["table_best_accuracy"] == pytest.approx(0.735133, abs=1e-6)
    assert final["best_accuracy"] == pytest.approx(
        float(load_table(dataset="cifar100").test_accuracy[final["best_index"]]))
    assert cli.main(["resume", str(run), "--max-evals", "50", "--quiet"]) == 0  # the data set is part of the run


@pytest.mark.skipif(not (SHARED / "nats_bench_tss_3datasets.csv").is_file(), reason="needs ../shared/data/nasbench201")
def test_the_bundled_table_is_the_shared_data(tmp_path):
    built = build(SHARED / "nasbench201_cifar10.json", tmp_path / "t.npz", SHARED / "nats_bench_tss_3datasets.csv",
                  SHARED / "nasbench201_cifar10valid_test.csv")
    assert np.array_equal(built.ops, load_table().ops)
    for dataset in DATASETS:
        assert np.array_equal(load_table(str(tmp_path / "t.npz"), dataset).test_accuracy,
                              load_table(dataset=dataset).test_accuracy)
