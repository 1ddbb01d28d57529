import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from searchlab.predictors.base import Predictor
from searchlab.predictors.features import fixed_topological_orders, reorder_features
from searchlab.predictors.metrics import kendall_tau
from searchlab.predictors.renas import ReNASConfig, ReNASPredictor, pairwise_ranking_loss
from searchlab.errors import ConfigError


def test_pairwise_loss_matches_formula():
    s = torch.tensor([2.0, 0.5, 1.0])
    y = torch.tensor([0.9, 0.8, 0.8])  # pair (1, 2) is a tie and is left out
    pairs = [(0, 1), (1, 0), (0, 2), (2, 0)]
    expect = np.mean([np.log1p(np.exp(-(s[i] - s[j]).item() * np.sign((y[i] - y[j]).item()))) for i, j in pairs])
    assert pairwise_ranking_loss(s, y).item() == pytest.approx(expect, rel=1e-6)
    assert pairwise_ranking_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])).item() == 0.0


def test_config_validation():
    with pytest.raises(ConfigError):
        ReNASConfig(renas_epochs=0)
    with pytest.raises(ConfigError):
        ReNASConfig(renas_lr=-1.0)
    with pytest.raises(ConfigError):
        ReNASConfig(renas_average_from=1.5)


def test_weights_are_the_mean_of_the_later_epochs_with_batch_norm_recomputed(table, sample):
    cells, y, _ = sample(table, 60, seed=4)

    def fit(epochs, average_from):
        return ReNASPredictor(ReNASConfig(renas_epochs=epochs, renas_average_from=average_from),
                              seed=1, device="cpu").fit(cells, y)

    predictor = fit(4, 0.5)  # the mean of the weights after epochs 2, 3 and 4
    averaged = predictor.net
    snapshots = [fit(epochs, 1.0).net for epochs in (2, 3, 4)]  # training is deterministic: the same path
    for name, weight in averaged.named_parameters():
        expect = torch.stack([dict(s.named_parameters())[name] for s in snapshots]).mean(0)
        assert torch.allclose(weight, expect, atol=1e-6), name
    assert not torch.allclose(averaged.features[0].weight, snapshots[-1].features[0].weight)
    # batch norm describes the averaged network's own first-layer outputs on the training cells
    with torch.no_grad():
        conv = averaged.features[0](predictor._encode(cells))
    assert torch.allclose(averaged.features[1].running_mean, conv.mean(dim=(0, 2, 3)), atol=1e-4)


@pytest.fixture(scope="module")
def trained(table, sample):
    cells, y, _ = sample(table, 150, seed=0)
    return ReNASPredictor(ReNASConfig(renas_epochs=40), seed=3, device="cpu").fit(cells, y)


def test_learns_a_ranking(table, sample, trained):
    cells, y, _ = sample(table, 1500, seed=0, offset=150)
    tau = kendall_tau(y, trained.predict(cells))
    assert tau > 0.25, tau


def test_deterministic_for_a_seed(table, sample, trained):
    cells, y, _ = sample(table, 150, seed=0)
    again = ReNASPredictor(ReNASConfig(renas_epochs=40), seed=3, device="cpu").fit(cells, y)
    probe, _, _ = sample(table, 50, seed=9)
    assert np.array_equal(trained.predict(probe), again.predict(probe))


def test_predictions_are_calibrated_to_targets(table, sample, trained):
    cells, y, _ = sample(table, 150, seed=0)
    pred = trained.predict(cells)
    assert abs(pred.mean() - y.mean()) < 0.02  # a least-squares line through the training set


def test_save_load_roundtrip_and_bad_dirs(table, sample, trained, tmp_path):
    probe, _, _ = sample(table, 64, seed=5)
    trained.meta["target"] = "test_accuracy"
    trained.save(tmp_path / "p")
    loaded = Predictor.load(tmp_path / "p")
    assert isinstance(loaded, ReNASPredictor) and loaded.meta["target"] == "test_accuracy"
    assert np.allclose(loaded.predict(probe), trained.predict(probe), atol=1e-6)
    with pytest.raises(ConfigError, match="not 'semi-gcn'"):
        Predictor.load(tmp_path / "p", kind="semi-gcn")
    with pytest.raises(ConfigError, match="does not exist"):
        Predictor.load(tmp_path / "missing")
    (tmp_path / "p" / "weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="corrupt"):
        Predictor.load(tmp_path / "p")
    info = json.loads((tmp_path / "p" / "predictor.json").read_text())
    (tmp_path / "p" / "predictor.json").write_text(json.dumps(info)[:-20])
    with pytest.raises(ConfigError, match="predictor.json is not valid JSON.*retrain it"):
        Predictor.load(tmp_path / "p")


def test_fast_inference_matches_the_trained_network(table, sample, trained):
    probe, _, _ = sample(table, 300, seed=4)
    with torch.no_grad():
        raw = trained.net.eval()(trained._encode(probe)).numpy().astype(np.float64)
    slope, intercept = (float(v) for v in trained.calibration)
    trained.exact, kept, trained.target_range = True, trained.target_range, None  # the plain line
    try:
        exact = trained.predict(probe, batch_size=128)  # folded BatchNorm, permuted fc1, several batches
    finally:
        trained.exact, trained.target_range = False, kept
    assert np.allclose(exact, raw * slope + intercept, atol=1e-5)
    fast = trained.predict(probe)  # bfloat16 where the CPU has it natively
    assert kendall_tau(exact, fast) > 0.98


def test_predicted_accuracies_stay_fractions_in_the_same_order(table, trained):
    cells = table.cells.take(np.arange(0, len(table), 97))
    pred = trained.predict(cells).astype(np.float64)
    assert 0 < pred.min() and pred.max() < 1  # the line alone extrapolates past 1 for the best cells
    slope, intercept = (float(v) for v in trained.calibration)
    trained.target_range, kept = None, trained.target_range
    try:
        line = trained.predict(cells).astype(np.float64)
    finally:
        trained.target_range = kept
    assert kendall_tau(line, pred) > 0.9999 and np.allclose(line[(line > 0.3) & (line < 0.9)],
                                                            pred[(line > 0.3) & (line < 0.9)], atol=1e-6)


def test_predictions_average_over_fixed_vertex_orders(table, sample, trained):
    probe, _, _ = sample(table, 200, seed=6)
    multi = copy.copy(trained)
    multi.config, multi.exact, multi.target_range = replace(trained.config, renas_orders=4), True, None
    with torch.no_grad():
        x, net = trained._encode(probe), trained.net.eval()
        views = [x] + [reorder_features(x, fixed_topological_orders(probe, v)) for v in range(1, 4)]
        raw = np.mean([net(v).numpy().astype(np.float64) for v in views], axis=0)
    slope, intercept = (float(v) for v in trained.calibration)
    averaged = multi.predict(probe, batch_size=64)
    assert np.allclose(averaged, raw * slope + intercept, atol=1e-5)
    assert np.allclose(multi.predict(probe.take(np.arange(50, 90))), averaged[50:90], atol=1e-6)  # batch-independent
    single = copy.copy(multi)
    single.config = trained.config
    assert not np.allclose(averaged, single.predict(probe), atol=1e-4)
    with pytest.raises(ConfigError, match="renas-orders"):
        ReNASConfig(renas_orders=0)
