"""The graph transformer + assessor blend on small slices of the bundled table (fast settings)."""

import json

import numpy as np
import pytest

from searchlab.cli import main
from searchlab.errors import ConfigError
from searchlab.predictors.base import Predictor
from searchlab.predictors.blend import BlendPredictor
from searchlab.predictors.configs import BlendConfig
from searchlab.predictors.metrics import kendall_tau

SMALL = dict(gt_dim=16, gt_layers=2, gt_heads=2, gt_epochs=20, gt_min_steps=0, gt_batch=128, gt_ensemble=1,
             gt_pretrain_epochs=1, gt_pretrain_cells=3000, embed_dim=16, hidden=32, gcn_epochs=40, unlabeled=400)


@pytest.fixture(scope="module")
def fitted(table, sample):
    cells, y, _ = sample(table, 200, seed=0)
    unlabeled, _, _ = sample(table, 400, seed=0, offset=200)
    return BlendPredictor(BlendConfig(**SMALL), seed=1, device="cpu").fit(cells, y, unlabeled)


def test_blend_ranks_and_is_the_weighted_mean_of_its_members(table, sample, fitted):
    cells, y, _ = sample(table, 600, seed=0, offset=600)
    blended = fitted.predict(cells)
    assert kendall_tau(y, blended) > 0.35  # the table's FLOPs column alone gives about 0.30
    z = [(m.predict(cells) - float(fitted.stats[i, 0])) / float(fitted.stats[i, 1])
         for i, m in enumerate(fitted.members.values())]
    mean = 0.65 * z[0] + 0.35 * z[1]
    assert kendall_tau(mean, blended) > 0.999  # a monotone map of the weighted mean
    # a cell's score does not depend on the other cells predicted with it
    assert np.allclose(fitted.predict(cells.take(np.arange(7))), blended[:7], atol=1e-5)


def test_save_load_roundtrip_and_bad_options(table, sample, fitted, tmp_path):
    probe, _, _ = sample(table, 50, seed=9)
    fitted.save(tmp_path / "b")
    loaded = Predictor.load(tmp_path / "b")
    assert isinstance(loaded, BlendPredictor)
    assert np.allclose(loaded.predict(probe), fitted.predict(probe), atol=1e-5)
    info = json.loads((tmp_path / "b" / "predictor.json").read_text())
    assert set(info["meta"]["members"]) == {"gt", "gcn"}
    with pytest.raises(ConfigError, match="--blend-weight"):
        BlendConfig(blend_weight=1.5)


def test_cli_trains_a_blend(tmp_path, capsys):
    out = tmp_path / "bl"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    assert main(["predictor", "train", "--kind", "blend", "--labels", "80", "--out", str(out), "--json", *flags,
                 "--blend-weight", "0.5"]) == 0
    assert json.loads((out / "predictor.json").read_text())["config"]["blend_weight"] == 0.5
    capsys.readouterr()
    assert main(["predict", str(out), "--hash", "00005c142e6f48ac74fdcf73e3439874", "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)[0]["predicted"] < 1
