"""The graph-transformer predictor on small slices of the bundled table (fast settings)."""

import json

import numpy as np
import pytest

from searchlab.cli import main
from searchlab.errors import ConfigError
from searchlab.predictors.base import Predictor
from searchlab.predictors.features import Cells
from searchlab.predictors.cell_transformer import laplacian_encoding, path_relations
from searchlab.predictors.graph_transformer import GraphTransformerPredictor, pretrained_encoder, pretraining_corpus
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
from searchlab.predictors.metrics import kendall_tau

HASH = "00005c142e6f48ac74fdcf73e3439874"
SMALL = dict(gt_dim=16, gt_layers=2, gt_heads=2, gt_epochs=30, gt_min_steps=0, gt_batch=128, gt_ensemble=2,
             gt_pretrain_epochs=1, gt_pretrain_cells=3000)


def test_path_relations_and_laplacian_of_a_chain():
    # 0 -> 1 -> 2 -> 6 with vertices 3-5 padding (the padded 7-vertex layout)
    adj = np.zeros((1, 7, 7), np.uint8)
    adj[0, 0, 1] = adj[0, 1, 2] = adj[0, 2, 6] = 1
    rel = path_relations(adj)[0]
    assert rel[0, 0] == 1 and rel[0, 1] == 2 and rel[0, 2] == 3 and rel[0, 6] == 4  # 1 + distance forward
    assert rel[6, 0] == 7 + 3 and rel[1, 0] == 7 + 1  # V + distance backward
    assert rel[0, 3] == 0 and rel[3, 3] == 1  # unrelated; itself
    pe = laplacian_encoding(adj, 4)[0]
    # padding rows stay out of the real graph's modes below eigenvalue 2 (a bipartite cell's top mode ties
    # with the padding vertices' eigenvalue 2, so the last column may mix them)
    assert pe.shape == (7, 4) and np.allclose(pe[3:6, :3], 0, atol=1e-6)
    assert np.allclose(np.abs(pe[[0, 1, 2, 6], 0]), np.sqrt([1, 2, 2, 1]) / np.sqrt(6), atol=1e-5)


@pytest.fixture(scope="module")
def trained(table, sample):
    cells, y, _ = sample(table, 300, seed=0)
    return GraphTransformerPredictor(GraphTransformerConfig(**SMALL), seed=3, device="cpu").fit(cells, y)


def test_learns_a_ranking(table, sample, trained):
    cells, y, _ = sample(table, 800, seed=0, offset=300)
    tau = kendall_tau(y, trained.predict(cells))
    assert tau > 0.4, tau  # the table's FLOPs column alone gives about 0.30
    assert trained.meta["pretraining"]["pretrain_cells"] == 3000


def test_fine_tune_starts_from_the_fitted_networks_and_leaves_them_unchanged(table, sample, trained):
    cells, y, _ = sample(table, 400, seed=1)
    held, held_y, _ = sample(table, 800, seed=0, offset=300)
    before = trained.predict(held)
    same = GraphTransformerPredictor(trained.config, seed=5, device="cpu").fine_tune(trained, cells, y, 0)
    for (net, reg), (net0, reg0) in zip(same.members, trained.members):  # 0 epochs: the same networks
        assert all(np.array_equal(v.numpy(), w.numpy()) for v, w in zip(net.state_dict().values(),
                                                                        net0.state_dict().values()))
    tuned = GraphTransformerPredictor(trained.config, seed=5, device="cpu").fine_tune(trained, cells, y, 5)
    assert np.array_equal(trained.predict(held), before)  # the start is copied, never trained
    assert kendall_tau(held_y, tuned.predict(held)) > 0.4
    assert not np.array_equal(tuned.predict(held), before)
    with pytest.raises(ConfigError, match="fitted on cells of the same space"):
        GraphTransformerPredictor(trained.config).fine_tune(GraphTransformerPredictor(trained.config), cells, y, 5)


def test_pretraining_is_cached_and_a_damaged_cache_is_retrained(table, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE_DIR", str(tmp_path / "c"))
    config = GraphTransformerConfig(**SMALL | {"gt_pretrain_cells": 500})
    corpus = pretraining_corpus(table.cells.take(np.arange(3)))
    first, info = pretrained_encoder(config, corpus, 6, device=__import__("torch").device("cpu"), progress=False)
    assert not info["cached"]
    (path,) = (tmp_path / "c").glob("graph_transformer_pretrained_*.safetensors")
    again, info = pretrained_encoder(config, corpus, 6, device=__import__("torch").device("cpu"), progress=False)
    assert info["cached"] and all(np.array_equal(first[k].numpy(), again[k].numpy()) for k in first)
    path.write_bytes(b"\x00damaged")
    _, info = pretrained_encoder(config, corpus, 6, device=__import__("torch").device("cpu"), progress=False)
    assert not info["cached"]


def test_save_load_roundtrip_and_bad_dirs(table, sample, trained, tmp_path):
    probe, _, _ = sample(table, 64, seed=5)
    trained.meta["target"] = "test_accuracy"
    trained.save(tmp_path / "p")
    loaded = Predictor.load(tmp_path / "p")
    assert isinstance(loaded, GraphTransformerPredictor) and len(loaded.members) == 2
    assert np.allclose(loaded.predict(probe), trained.predict(probe), atol=1e-6)
    assert 0 < trained.predict(probe).min() and trained.predict(probe).max() < 1
    with pytest.raises(ConfigError, match="not 'renas'"):
        Predictor.load(tmp_path / "p", kind="renas")
    info = json.loads((tmp_path / "p" / "predictor.json").read_text())
    info["config"]["gt_ensemble"] = 3  # says three networks, the weights hold two
    (tmp_path / "p" / "predictor.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="does not match"):
        Predictor.load(tmp_path / "p")
    info["config"]["gt_ensemble"], info["kind"] = 2, "renas"  # another kind's name on these weights
    (tmp_path / "p" / "predictor.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError):
        Predictor.load(tmp_path / "p")
    (tmp_path / "p" / "weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="corrupt"):
        Predictor.load(tmp_path / "p")


def test_cells_of_another_shape_are_refused(trained):
    cells = Cells(np.zeros((2, 5, 5), np.uint8), np.zeros((2, 5), np.int8))
    with pytest.raises(ConfigError, match="5 vertices"):
        trained.predict(cells)
    with pytest.raises(ConfigError, match="--gt-dim"):
        GraphTransformerConfig(gt_dim=10, gt_heads=4)


def test_cli_train_predict_and_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "gt"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    assert main(["predictor", "train", "--kind", "graph-transformer", "--labels", "120", "--seed", "1",
                 "--out", str(out), "--json", *flags, "--gt-epochs", "5", "--gt-min-steps", "0",
                 "--gt-ensemble", "1"]) == 0
    assert json.loads((out / "predictor.json").read_text())["kind"] == "graph-transformer"
    capsys.readouterr()
    assert main(["predict", str(out), "--hash", HASH, "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)[0]["predicted"] < 1
    for argv, message in [(["predict", str(out), "--hash", "xyz"], "not a NAS-Bench-101 hash"),
                          (["predict", str(out), "--spec", '{"matrix": [[0,1],[1,0]], "ops": ["input","output"]}'],
                           "upper triangular")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
    (out / "weights.safetensors").write_bytes(b"\x00garbage")
    assert main(["predict", str(out), "--hash", HASH]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt" in err and "\n" not in err
