"""The shared trainer: learning on real digits, determinism, limits, augmentation and failure isolation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from searchlab.training.data import ImageTensors, load_classification, split_holdout
from searchlab.errors import ConfigError, DataError
from searchlab.protocols import Result
from searchlab.training.trainer import (EpochBatches, TrainConfig, TrainingFailed, amp_dtype, evaluate_classifier, fit,
                               make_optimizer, make_schedule, paired_patches, random_crop, random_flip,
                               random_rot90, resolve_device, run_guarded, to_float, train_classifier)
from searchlab.search_spaces.classifiers import build_classifier

MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist_mini"


@pytest.fixture(scope="module")
def digits():
    data = load_classification(f"mnist:{MNIST}")
    return split_holdout(data.train, val_fraction=0.2, seed=0)


def _lenet(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_classifier("lenet5")


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05)


def test_lenet_learns_real_digits(digits):
    train, val = digits
    model = _lenet()
    before = evaluate_classifier(model, val, device="cpu")["accuracy"]
    stats = train_classifier(model, train, CFG, seed=1, device="auto")
    after = evaluate_classifier(model, val, device="cpu")
    assert stats.steps == 3 * (800 // 16) and stats.epochs == 3 and stats.stopped_by == "epochs"
    assert before < 0.3 and after["accuracy"] >= 0.8, (before, after)
    assert after["loss"] < 1.0 and stats.final_loss < 1.0


def test_same_seed_same_metrics_and_global_rng_untouched(digits):
    train, val = digits
    results = []
    for _ in range(2):
        state = torch.get_rng_state()
        model = _lenet()
        stats = train_classifier(model, train, TrainConfig(epochs=1, batch_size=32), seed=5, device="cpu")
        results.append((stats.final_loss, evaluate_classifier(model, val, device="cpu")))
        assert torch.equal(state, torch.get_rng_state())
    assert results[0] == results[1]
    model = _lenet()
    other = train_classifier(model, train, TrainConfig(epochs=1, batch_size=32), seed=6, device="cpu")
    assert other.final_loss != results[0][0]


def test_resident_and_streamed_batches_are_identical(digits):
    train, _ = digits
    small = train.subset(range(96))
    got = []
    for resident in (True, False):
        gen = torch.Generator().manual_seed(3)
        batches = EpochBatches(small, 32, torch.device("cpu"), gen, augment="crop_flip", resident=resident)
        got.append([(x.clone(), y.clone()) for x, y in batches.epoch()])
    assert len(got[0]) == 3
    for (xa, ya), (xb, yb) in zip(*got):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    m1, m2 = _lenet(), _lenet()
    s1 = train_classifier(m1, small, TrainConfig(epochs=1, batch_size=32, device_data="on"), seed=2, device="cpu")
    s2 = train_classifier(m2, small, TrainConfig(epochs=1, batch_size=32, device_data="off"), seed=2, device="cpu")
    assert s1.final_loss == s2.final_loss


def test_limits_steps_seconds_and_fractional_epochs(digits):
    train, _ = digits
    stats = train_classifier(_lenet(), train, TrainConfig(epochs=5, batch_size=32, max_steps=7), seed=0, device="cpu")
    assert stats.steps == 7 and stats.stopped_by == "steps"
    stats = train_classifier(_lenet(), train, TrainConfig(epochs=0.5, batch_size=32), seed=0, device="cpu")
    assert stats.steps == 13 and stats.stopped_by == "epochs"
    stats = train_classifier(_lenet(), train, TrainConfig(epochs=50, batch_size=8, max_seconds=0.3), seed=0,
                             device="cpu")
    assert stats.stopped_by == "seconds" and stats.steps < 50 * 100 and stats.seconds < 5


def test_label_smoothing_grad_clip_and_adam_train(digits):
    train, val = digits
    cfg = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=2e-3, weight_decay=0.0, label_smoothing=0.1,
                      grad_clip=1.0, schedule="step")
    model = _lenet()
    train_classifier(model, train, cfg, seed=0, device="cpu")
    assert evaluate_classifier(model, val, device="cpu")["accuracy"] > 0.5


def test_schedules():
    p = [nn.Parameter(torch.zeros(1))]
    for name, expect in (("cosine", [1.0, 0.5, 0.0]), ("step", [1.0, 0.1, 0.01]), ("constant", [1.0, 1.0, 1.0])):
        cfg = TrainConfig(schedule=name, lr=1.0)
        opt = make_optimizer(p, cfg)
        sched = make_schedule(opt, cfg, total_steps=100)
        seen = {}
        for step in range(101):
            seen[step] = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
        got = [seen[0], seen[50], seen[100]] if name != "step" else [seen[0], seen[50], seen[75]]
        assert got == pytest.approx(expect, abs=1e-9), name


# ------------------------------------------------------------------------------------------ failure isolation

class _Exploding(nn.Module):
    """Outputs grow without bound: the loss turns non-finite within a few steps at a huge LR."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 1e30


def test_nan_loss_fails_the_candidate_not_the_search(digits):
    train, _ = digits
    with pytest.raises(TrainingFailed, match="non-finite"):
        train_classifier(_Exploding(), train, TrainConfig(epochs=1, batch_size=32, lr=1e6), seed=0, device="cpu")
    result = run_guarded(lambda: Result("ok", {"x": float(train_classifier(
        _Exploding(), train, TrainConfig(epochs=1, lr=1e6), seed=0, device="cpu").final_loss)}))
    assert result.status == "failed" and "non-finite" in result.error


def test_model_exception_and_oom_become_failed_results(digits):
    train, _ = digits

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 10)  # wrong input size for 28x28 digits

        def forward(self, x):
            return self.fc(x)

    result = run_guarded(lambda: train_classifier(Broken(), train, CFG, seed=0, device="cpu"), cost={"seconds": 1})
    assert result.status == "failed" and result.error.startswith("RuntimeError") and result.cost == {"seconds": 1}

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    result = run_guarded(oom)
    assert result.status == "failed" and "out of memory" in result.error and "--batch-size" in result.error


def test_user_errors_still_propagate():
    def bad_data():
        raise DataError("x.jpg is broken")

    with pytest.raises(DataError):
        run_guarded(bad_data)
    unlabelled = ImageTensors(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), None, [])
    with pytest.raises(DataError, match="needs labels"):
        train_classifier(_lenet(), unlabelled, CFG, seed=0, device="cpu")


# ------------------------------------------------------------------------------------------ config and devices

def test_config_checks_and_presets():
    for bad in (dict(epochs=0), dict(optimizer="rmsprop"), dict(lr=-1.0), dict(schedule="poly"),
                dict(label_smoothing=1.0), dict(augment="mixup")):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    assert TrainConfig(max_seconds=None, augment=True).augment == "auto"
    sr = TrainConfig.preset("sr", epochs=2)
    assert (sr.optimizer, sr.lr, sr.epochs) == ("adam", 1e-4, 2)
    assert TrainConfig.preset("gan").betas == (0.5, 0.999)
    with pytest.raises(ConfigError):
        TrainConfig.preset("detection")


def test_resolve_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
        assert amp_dtype(torch.device("cpu")) is None


# ------------------------------------------------------------------------------------------ augmentation

def test_random_crop_shifts_content_inside_zero_padding():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.uint8).reshape(2, 3, 6, 6)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, gen)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(2):  # every crop is some 6x6 window of the padded image
        windows = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(padded[i, :, dy:dy + 6, dx:dx + 6], out[i])]
        assert windows
    again = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_random_flip_mirrors_about_half():
    x = torch.arange(64 * 4, dtype=torch.float32).reshape(64, 1, 1, 4)
    out = random_flip(x, torch.Generator().manual_seed(1))
    flipped = (out[:, 0, 0, 0] == x[:, 0, 0, 3])
    assert torch.all(flipped | (out[:, 0, 0, 0] == x[:, 0, 0, 0]))
    assert 16 < int(flipped.sum()) < 48


def test_paired_patches_stay_aligned():
    gen = torch.Generator().manual_seed(0)
    hr = [torch.randint(0, 256, (3, 24, 20), generator=gen, dtype=torch.uint8) for _ in range(3)]
    lr = [h[:, ::2, ::2].clone() for h in hr]  # nearest downscale: LR pixel (y, x) = HR pixel (2y, 2x)
    lo, hi = paired_patches(lr, hr, scale=2, patch=6, batch_size=8, gen=gen)
    assert lo.shape == (8, 3, 6, 6) and hi.shape == (8, 3, 12, 12)
    # after the same flips/rotations each LR pixel is still an HR pixel; the sampling grid may move by one
    for i in range(8):
        assert any(torch.equal(lo[i], hi[i, :, oy::2, ox::2]) for oy in (0, 1) for ox in (0, 1))
    with pytest.raises(DataError, match="smaller than"):
        paired_patches(lr, hr, scale=2, patch=64, batch_size=1, gen=gen)


def test_rot90_gives_the_eight_dihedral_transforms():
    x = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3).repeat(200, 1, 1, 1)
    out = random_rot90(x, torch.Generator().manual_seed(0))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8


# ------------------------------------------------------------------------------------------ generic fit

def test_fit_trains_a_regression_with_custom_batches():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(4, 1)
    xs = torch.randn(256, 4, generator=gen)
    ys = xs @ target
    model = nn.Linear(4, 1, bias=False)

    def batches():
        perm = torch.randperm(256, generator=gen)
        for i in range(0, 256, 32):
            yield xs[perm[i:i + 32]], ys[perm[i:i + 32]]

    cfg = TrainConfig.preset("sr", lr=0.05, epochs=20, batch_size=32)
    stats = fit(model, batches, lambda m, b: F.mse_loss(m(b[0]), b[1]), cfg, steps_per_epoch=8, seed=0, device="cpu")
    assert stats.steps == 160 and stats.final_loss < 1e-3
    assert torch.allclose(model.weight.detach().T, target, atol=0.05)


def test_to_float_scales_to_unit_range():
    x = torch.tensor([0, 255, 127], dtype=torch.uint8).reshape(1, 1, 1, 3)
    assert to_float(x).flatten().tolist() == pytest.approx([-1.0, 1.0, 127 / 127.5 - 1], abs=1e-6)


@pytest.mark.slow
def test_compile_path_matches_eager(digits):
    train, _ = digits
    small = train.subset(range(64))
    cfg = TrainConfig(epochs=1, batch_size=16, device_data="on")
    eager = train_classifier(_lenet(), small, cfg, seed=0, device="cpu")
    compiled = train_classifier(_lenet(), small, replace(cfg, compile=True), seed=0, device="cpu")
    assert compiled.steps == eager.steps == 4
    assert compiled.final_loss == pytest.approx(eager.final_loss, rel=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_channels_last(digits):
    train, val = digits
    model = _lenet()
    stats = train_classifier(model, train, CFG, seed=1, device="cuda")
    assert stats.steps == 150 and evaluate_classifier(model, val, device="cuda")["accuracy"] >= 0.8
    assert amp_dtype(torch.device("cuda")) in (torch.bfloat16, torch.float16)
