import numpy as np
import pytest
import torch

from predictors.base import Predictor
from predictors.metrics import kendall_tau
from predictors.semi_gcn import SemiGCNConfig, SemiGCNPredictor, relation_graph
from searchlab.errors import ConfigError


def test_relation_graph_is_symmetric_knn_with_gaussian_weights():
    z = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    edge_index, weight, sigma = relation_graph(z, k=3, sigma=0.0)
    pairs = {(int(a), int(b)): float(w) for a, b, w in zip(edge_index[0], edge_index[1], weight)}
    assert all((b, a) in pairs and pairs[(b, a)] == pytest.approx(w) for (a, b), w in pairs.items())
    assert all(a != b for a, b in pairs)
    assert sigma > 0 and all(0 < w <= 1 for w in pairs.values())
    d = torch.cdist(z, z)
    for node in range(40):  # every node keeps edges to its 3 nearest neighbours
        nearest = torch.topk(d[node], 4, largest=False).indices[1:].tolist()
        assert all((m, node) in pairs for m in nearest)
        a, b = node, nearest[0]
        assert pairs[(a, b)] == pytest.approx(float(torch.exp(-d[a, b] ** 2 / (2 * sigma ** 2))), rel=1e-5)


def test_config_validation():
    with pytest.raises(ConfigError):
        SemiGCNConfig(knn=0)
    with pytest.raises(ConfigError):
        SemiGCNConfig(sigma=-1.0)


@pytest.fixture(scope="module")
def trained(table, sample):
    cells, y, _ = sample(table, 120, seed=1)
    unl, _, _ = sample(table, 600, seed=1, offset=2000)
    cfg = SemiGCNConfig(unlabeled=600, gcn_epochs=60, rebuild_every=20)
    return SemiGCNPredictor(cfg, seed=0, device="cpu").fit(cells, y, unl)


def test_learns_from_labels_and_unlabelled_cells(table, sample, trained):
    cells, y, _ = sample(table, 1000, seed=1, offset=200)
    assert trained.meta["unlabeled_size"] == 600 and trained.meta["train_size"] == 120
    assert kendall_tau(y, trained.predict(cells)) > 0.15


def test_inductive_prediction_does_not_depend_on_the_batch(table, sample, trained):
    cells, _, _ = sample(table, 60, seed=4)
    alone = trained.predict(cells.take(np.arange(10)))
    together = trained.predict(cells, batch_size=7)
    assert np.allclose(alone, together[:10], atol=1e-5)


def test_save_load_roundtrip(table, sample, trained, tmp_path):
    cells, _, _ = sample(table, 40, seed=6)
    trained.save(tmp_path / "g")
    loaded = Predictor.load(tmp_path / "g", kind="semi-gcn")
    assert np.allclose(loaded.predict(cells), trained.predict(cells), atol=1e-5)
