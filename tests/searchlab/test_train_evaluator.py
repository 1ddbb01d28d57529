"""The `train` evaluator: real training of candidates a space builds, failures isolated, and the CLI run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from searchlab import cli
from searchlab import registry
from searchlab.engine.assembly import build_evaluator
from searchlab.errors import ConfigError, DataError
from searchlab.options import opt
from searchlab.protocols import Context
from searchlab.training.train_evaluator import TrainEvaluator, TrainEvaluatorConfig, count_flops

DATA = Path(__file__).resolve().parents[1] / "data"
CIFAR = f"cifar10:{DATA / 'cifar10_mini'}"
MNIST = f"mnist:{DATA / 'mnist_mini'}"


@dataclass(frozen=True)
class TinyConfig:
    """tiny CNN space options"""

    max_width: int = opt(8, help="widest first conv")


class TinyCNNSpace:
    """Genomes {"width": w, "blowup": bool}: conv3x3(w)-BN-ReLU-avgpool(4)-linear; `blowup` makes outputs inf."""

    name = "test-tinycnn"

    def __init__(self, config: TinyConfig = TinyConfig()) -> None:
        self.max_width = config.max_width

    def sample(self, rng: np.random.Generator):
        return {"width": int(rng.integers(1, self.max_width + 1)), "blowup": False}

    def mutate(self, genome, rng):
        return {"width": int(rng.integers(1, self.max_width + 1)), "blowup": False}

    def validate(self, genome):
        return genome

    def key(self, genome):
        return json.dumps(genome, sort_keys=True)

    def describe(self, genome):
        return dict(genome)

    def build_network(self, genome, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
        w = genome["width"]
        side = image_size // 4
        layers = [nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                  nn.AvgPool2d(4), nn.Flatten(), nn.Linear(w * side * side, num_classes)]
        if genome.get("blowup"):
            layers.append(_Scale(float("inf")))
        return nn.Sequential(*layers)


class _Scale(nn.Module):
    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s

    def forward(self, x):
        return x * self.s


registry.register_space("test-tinycnn", factory=lambda config, ctx: TinyCNNSpace(config), config=TinyConfig,
                        default_strategy="random", default_evaluator="train", help="tiny CNNs (tests only)")


def _evaluator(**kw) -> TrainEvaluator:
    cfg = TrainEvaluatorConfig(**{"data": MNIST, "epochs": 2, "batch_size": 16, "val_fraction": 0.2, **kw})
    return TrainEvaluator(TinyCNNSpace(), cfg, Context(seed=0))


def test_trains_and_reports_accuracy_params_flops_cost():
    ev = _evaluator()
    assert (len(ev.train_set), len(ev.val_set), ev.in_channels, ev.image_size) == (800, 200, 1, 28)
    result = ev.evaluate({"width": 8, "blowup": False}, seed=1, device="auto")
    assert result.ok, result.error
    obj = result.objectives
    assert obj["accuracy"] >= 0.6  # a real fit of real digits: chance is 0.1
    assert obj["params"] == 1 * 8 * 9 + 2 * 8 + 8 * 7 * 7 * 10 + 10
    # multiply-accumulates: the conv (28*28 outputs x 8 filters x 9 taps) and the linear layer
    assert obj["flops"] == 28 * 28 * 8 * 9 + 8 * 7 * 7 * 10
    assert result.cost["epochs"] == 2 and result.cost["steps"] == 100 and result.cost["seconds"] > 0
    assert list(ev.objectives) == ["accuracy", "params", "flops"] and ev.objectives["accuracy"] == "max"


def test_same_seed_same_result_other_seed_other_weights():
    ev = _evaluator(epochs=0.5)
    a = ev.evaluate({"width": 4, "blowup": False}, seed=3, device="cpu")
    b = ev.evaluate({"width": 4, "blowup": False}, seed=3, device="cpu")
    c = ev.evaluate({"width": 4, "blowup": False}, seed=4, device="cpu")
    assert a.objectives == b.objectives
    assert a.objectives["val_loss"] != c.objectives["val_loss"]


def test_failing_candidates_do_not_stop_the_search():
    ev = _evaluator(epochs=0.25)
    nan = ev.evaluate({"width": 4, "blowup": True}, seed=0, device="cpu")
    assert nan.status == "failed" and "non-finite" in nan.error and nan.cost["seconds"] > 0
    broken = ev.evaluate({"width": 0, "blowup": False}, seed=0, device="cpu")  # a conv with no filters
    assert broken.status == "failed" and broken.error
    fine = ev.evaluate({"width": 2, "blowup": False}, seed=0, device="cpu")
    assert fine.ok


def test_score_on_the_official_test_split_and_subset_training():
    ev = _evaluator(data=CIFAR, val_fraction=0.0, train_size=64, epochs=0.5, test_accuracy=True)
    assert len(ev.train_set) == 64 and len(ev.val_set) == 50
    result = ev.evaluate({"width": 2, "blowup": False}, seed=0, device="cpu")
    assert result.ok and result.objectives["accuracy"] == result.objectives["test_accuracy"]
    assert result.cost["steps"] == 2


def test_bad_configuration_is_reported():
    with pytest.raises(ConfigError, match="--data KIND:PATH"):
        TrainEvaluatorConfig()
    with pytest.raises(ConfigError, match="val-fraction"):
        TrainEvaluatorConfig(data=MNIST, val_fraction=1.5)
    with pytest.raises(ConfigError, match="lr must be"):
        TrainEvaluatorConfig(data=MNIST, lr=0.0)
    with pytest.raises(DataError, match="KIND:PATH"):
        TrainEvaluator(TinyCNNSpace(), TrainEvaluatorConfig(data="imagenet:/x"), Context())
    with pytest.raises(DataError, match="no official test split"):
        TrainEvaluator(TinyCNNSpace(), TrainEvaluatorConfig(data=MNIST, val_fraction=0.0), Context())

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            TrainEvaluator(TinyCNNSpace(), TrainEvaluatorConfig(data=MNIST), Context(device="cuda"))

    class NoNetworks:
        name = "bits"

    with pytest.raises(ConfigError, match="no build_network"):
        TrainEvaluator(NoNetworks(), TrainEvaluatorConfig(data=MNIST), Context())


def test_count_flops_of_a_linear_layer():
    assert count_flops(nn.Linear(5, 3), torch.zeros(1, 5)) == 15


def test_registered_and_built_from_stored_json_config():
    cli._load_plugins()
    assert "train" in registry.evaluators()
    config = {"space": "test-tinycnn", "evaluator": "train",
              "evaluator_config": {"data": MNIST, "epochs": 1, "max_seconds_per_candidate": "2m"}}
    ev = build_evaluator(TinyCNNSpace(), config, Context(seed=0))
    assert isinstance(ev, TrainEvaluator) and ev.config.max_seconds_per_candidate == 120.0


def test_cli_search_with_the_train_evaluator(tmp_path, capsys):
    run = tmp_path / "run"
    code = cli.main(["search", "test-tinycnn", "--evaluator", "train", "--strategy", "random", "--data", MNIST,
                     "--epochs", "0.5", "--batch-size", "32", "--train-size", "320", "--max-evals", "3",
                     "--seed", "0", "--run", str(run)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["report", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert "accuracy" in text and "flops" in text
    code = cli.main(["search", "test-tinycnn", "--evaluator", "train", "--data", f"mnist:{tmp_path}/nothing",
                     "--run", str(tmp_path / "bad")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_nasbench101_with_real_training(tmp_path, capsys):
    cli._load_plugins()
    if "nasbench101" not in registry.spaces():
        pytest.skip("the nasbench101 space is not installed")
    run = tmp_path / "nb"
    code = cli.main(["search", "nasbench101", "--evaluator", "train", "--strategy", "random", "--data", CIFAR,
                     "--epochs", "0.5", "--batch-size", "32", "--stem-channels", "8", "--modules-per-stack", "1",
                     "--max-evals", "2", "--seed", "0", "--quiet", "--run", str(run)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["report", str(run), "--json"]) == 0
    text = capsys.readouterr().out
    assert '"accuracy"' in text and '"flops"' in text
