"""The predictors on NAS-Bench-201 cells through the space's encoding (the bundled table, no ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import kendalltau

from searchlab import cli
from searchlab.errors import ConfigError
from searchlab.predictors.configs import ReNASConfig, SemiGCNConfig
from searchlab.predictors.features import encoding
from searchlab.predictors.renas import ReNASPredictor
from searchlab.predictors.semi_gcn import SemiGCNPredictor
from searchlab.predictors.table import load_predictor_table
from searchlab.predictors import nasbench201_encoding as enc201

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def table():
    return load_predictor_table(space="nasbench201")


def test_ops_as_nodes_layout_by_hand():
    # vertices: 0 input, 1 (0->1), 2 (0->2), 3 (1->2), 4 (0->3), 5 (1->3), 6 (2->3), 7 output
    expected = np.zeros((8, 8), np.uint8)
    for a, b in [(0, 1), (0, 2), (0, 4),  # the input feeds the edges leaving node 0
                 (1, 3), (1, 5),  # edge 0->1 feeds the edges leaving node 1
                 (2, 6), (3, 6),  # edges into node 2 feed the edge 2->3
                 (4, 7), (5, 7), (6, 7)]:  # edges into node 3 feed the output
        expected[a, b] = 1
    cells = enc201.cells_from_archs([EXAMPLE, "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"])
    assert np.array_equal(cells.adjacency[0], expected) and np.array_equal(cells.adjacency[1], expected)
    # input 1, output 2, then none 3, skip 4, conv1x1 5, conv3x3 6, avg pool 7
    assert cells.ops.tolist() == [[1, 6, 6, 6, 4, 6, 5, 2], [1, 3, 4, 7, 3, 3, 3, 2]]
    assert cells.space == "nasbench201" and encoding("nasbench201").vertices == 8


def test_vertex_costs_by_hand():
    flops, params = enc201.costs(enc201.cells_from_archs([EXAMPLE]))
    assert flops.shape == params.shape == (1, 3, 8)
    # vertex 1 is a 3x3 conv: 9*C*C MACs per position, 9*C*C + 2C parameters, in each of 5 cells
    assert flops[0, 0, 1] == 9 * 16 * 16 * 32 * 32 * 5 and params[0, 0, 1] == (9 * 16 * 16 + 2 * 16) * 5
    assert flops[0, 2, 6] == 64 * 64 * 8 * 8 * 5 and params[0, 2, 6] == (64 * 64 + 2 * 64) * 5  # the 1x1 conv
    assert flops[0, :, [0, 4, 7]].sum() == 0 and params[0, :, [0, 4, 7]].sum() == 0  # input, skip, output


def test_table_is_every_cell_in_official_order(table):
    assert len(table) == 15625
    row = table.table.index(EXAMPLE)
    assert np.array_equal(table.cells.take([row]).ops, enc201.cells_from_archs([EXAMPLE]).ops)
    assert table.target("test_accuracy")[row] == pytest.approx(table.table.test_accuracy[row])
    with pytest.raises(ConfigError, match="no flops values"):
        table.target("flops")


def _split(table, n, seed=0):
    order = np.random.default_rng(seed).permutation(len(table))
    return np.sort(order[:n]), np.sort(order[n:n + 3000])


def test_renas_ranks_held_out_cells(table):
    train, test = _split(table, 156)
    y = table.target("test_accuracy")
    p = ReNASPredictor(ReNASConfig(renas_epochs=60), seed=0, device="cpu").fit(table.cells.take(train), y[train])
    tau = kendalltau(p.predict(table.cells.take(test)), y[test])[0]
    assert tau > 0.45, tau  # about 0.55 with these settings; a predictor that does not learn is near 0


def test_assessor_ranks_held_out_cells(table):
    train, test = _split(table, 156, seed=1)
    y = table.target("test_accuracy")
    unlabeled = table.cells.take(np.setdiff1d(np.arange(400, 800), train))
    p = SemiGCNPredictor(SemiGCNConfig(gcn_epochs=60, rebuild_every=20), seed=0, device="cpu")
    p.fit(table.cells.take(train), y[train], unlabeled)
    tau = kendalltau(p.predict(table.cells.take(test)), y[test])[0]
    assert tau > 0.35, tau


def test_a_predictor_refuses_cells_of_the_other_space(table):
    nb101 = load_predictor_table()
    y = table.target("test_accuracy")
    p = ReNASPredictor(ReNASConfig(renas_epochs=2), seed=0, device="cpu").fit(table.cells.take(np.arange(20)), y[:20])
    with pytest.raises(ConfigError, match="trained on nasbench201 cells and cannot predict nasbench101"):
        p.predict(nb101.cells.take(np.arange(5)))


def test_cli_on_nasbench201(tmp_path, capsys):
    out = tmp_path / "p"
    assert cli.main(["predictor", "train", "--kind", "renas", "--space", "nasbench201", "--labels", "40",
                     "--renas-epochs", "5", "--out", str(out)]) == 0
    assert json.loads((out / "predictor.json").read_text())["meta"]["space"] == "nasbench201"
    capsys.readouterr()
    assert cli.main(["predict", str(out), "--arch", EXAMPLE, "--arch", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows][0] == EXAMPLE and rows[1]["index"] == 0 and len(rows) == 2
    assert cli.main(["predict", str(out), "--all", "--top", "3", "--quiet"]) == 0
    assert "|nor_conv" in capsys.readouterr().out
    bad = [["--arch", EXAMPLE.replace("nor_conv_1x1", "conv5x5")], ["--arch", "15625"], ["--arch", "|none~0|"],
           ["--hash", "00005c142e6f48ac74fdcf73e3439874"]]
    for argv in bad:
        assert cli.main(["predict", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err
    assert "is a nasbench201 predictor" in err


def test_nasbench101_predictor_refuses_arch_strings(tmp_path, capsys):
    out = tmp_path / "p101"
    assert cli.main(["predictor", "train", "--kind", "renas", "--labels", "30", "--renas-epochs", "2",
                     "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["predict", str(out), "--arch", EXAMPLE]) == 2
    assert "nasbench101 predictor" in capsys.readouterr().err


def test_guided_search_on_nasbench201(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["search", "nasbench201", "--strategy", "renas", "--initial", "30", "--top-k", "10",
                     "--rounds", "1", "--renas-epochs", "20", "--max-evals", "40", "--run", str(run)]) == 0


def test_a_predictor_without_this_encoding_is_refused(tmp_path, monkeypatch):
    from searchlab.predictors import commands
    from searchlab.predictors.graph_transformer import GraphTransformerPredictor
    monkeypatch.setattr(GraphTransformerPredictor, "spaces", ("nasbench101",))
    with pytest.raises(ConfigError, match="works on nasbench101 cells, not nasbench201"):
        commands.train("graph-transformer", 40, 0, "test_accuracy", str(tmp_path / "gt"), {}, space="nasbench201")


def test_the_labels_of_each_data_set(table):
    valid = load_predictor_table(space="nasbench201", dataset="cifar10-valid")
    c100 = load_predictor_table(space="nasbench201", dataset="cifar100")
    assert np.array_equal(valid.cells.ops, table.cells.ops)
    assert int(np.argmax(valid.target("test_accuracy"))) == 1459
    assert int(np.argmax(c100.target("test_accuracy"))) == 9930
    # two independently trained CIFAR-10 labels agree closely but not perfectly (the data's README: 0.892)
    rows = np.arange(0, 15625, 5)
    tau = kendalltau(valid.target("test_accuracy")[rows], table.target("test_accuracy")[rows])[0]
    assert 0.85 < tau < 0.93, tau
    with pytest.raises(ConfigError, match="unknown NAS-Bench-201 data set 'imagenet'"):
        load_predictor_table(space="nasbench201", dataset="imagenet")
    with pytest.raises(ConfigError, match="NAS-Bench-101 has CIFAR-10 labels only"):
        load_predictor_table(dataset="cifar100")


def test_graph_transformer_on_nasbench201_trains_on_one_label_and_scores_on_another(tmp_path, capsys):
    """Pretrained on (a sample of) the 15,625 cells' costs and ops, fine-tuned on cifar10-valid, scored on cifar10."""
    out = tmp_path / "gt"
    small = ["--gt-dim", "16", "--gt-layers", "2", "--gt-heads", "2", "--gt-epochs", "30", "--gt-min-steps", "0",
             "--gt-batch", "128", "--gt-ensemble", "2",
             "--gt-pretrain-epochs", "1", "--gt-pretrain-cells", "3000"]
    assert cli.main(["predictor", "train", "--kind", "graph-transformer", "--space", "nasbench201", "--dataset",
                     "cifar10-valid", "--labels", "156", "--out", str(out), *small, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "cifar10-valid"
    assert json.loads((out / "predictor.json").read_text())["meta"]["dataset"] == "cifar10-valid"
    assert cli.main(["predictor", "eval", str(out), "--dataset", "cifar10", "--test", "3000", "--json",
                     "--plot", str(tmp_path / "s.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "cifar10" and report["kendall_tau"] > 0.45, report  # about 0.55 here
    assert cli.main(["predict", str(out), "--arch", EXAMPLE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["index"] == 6111
    assert cli.main(["predictor", "train", "--kind", "renas", "--dataset", "cifar100", "--labels", "20",
                     "--out", str(tmp_path / "x")]) == 2
    assert "--dataset is for --space nasbench201" in capsys.readouterr().err
