"""CUDA graph capture of the training step: when it is chosen, why not, and that the capturable step
trains exactly like the plain loop (the capture itself is compared with it on a GPU)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from searchlab.training.data import load_classification, split_holdout
from searchlab.errors import ConfigError
from searchlab.training.graph_step import (WARMUP, GraphedStep, graph_plan, has_hooks, lr_factor, probe_optimizer,
                                   same_layout)
from searchlab.search_spaces.classifiers import build_classifier
from searchlab.training.trainer import TrainConfig, make_optimizer, make_schedule, train_classifier

MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist_mini"
CUDA = torch.device("cuda")  # graph_plan only reads the device's type: no GPU is touched


@pytest.fixture(scope="module")
def digits():
    data = load_classification(f"mnist:{MNIST}")
    return split_holdout(data.train, val_fraction=0.2, seed=0)[0].subset(range(128))


def _lenet(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_classifier("lenet5")


def _plan(model=None, **kw):
    args = dict(mode="auto", device=CUDA, compiled=False, grad_scaling=False, total_steps=100)
    return graph_plan(model or _lenet(), **{**args, **kw})


def test_plan_captures_a_plain_cuda_run_and_says_why_not_otherwise():
    assert _plan() == ""
    assert "CUDA graphs off" == _plan(mode="off")
    assert "eagerly" in _plan(mode="eager")
    assert "not a CUDA device" in _plan(device=torch.device("cpu"))
    assert "torch.compile" in _plan(compiled=True)
    assert "gradient scaling" in _plan(grad_scaling=True)
    assert "steps" in _plan(total_steps=WARMUP + 1) and _plan(total_steps=WARMUP + 2) == ""


def test_hooks_of_any_kind_rule_out_a_capture():
    for add in (lambda m: m.register_forward_hook(lambda *a: None),
                lambda m: m.register_forward_pre_hook(lambda *a: None),
                lambda m: m.register_full_backward_hook(lambda *a: None),
                lambda m: next(m.parameters()).register_hook(lambda g: g),
                lambda m: nn.modules.module.register_module_forward_hook(lambda *a: None)):
        model = _lenet()
        handle = add(model)
        try:
            assert has_hooks(model) and "hooks" in _plan(model)
        finally:
            handle.remove()
        assert not has_hooks(model) and _plan(model) == ""


def test_batches_of_another_shape_or_type_are_not_copied_into_the_buffers():
    static = [torch.zeros(8, 3, 4, 4), torch.zeros(8, dtype=torch.long)]
    assert same_layout((torch.ones(8, 3, 4, 4), torch.ones(8, dtype=torch.long)), static)
    assert same_layout([torch.ones(8, 3, 4, 4), torch.ones(8, dtype=torch.long)], static)
    assert not same_layout((torch.ones(5, 3, 4, 4), torch.ones(5, dtype=torch.long)), static)  # last partial batch
    assert not same_layout((torch.ones(8, 3, 4, 4), torch.ones(8)), static)  # dtype
    assert not same_layout((torch.ones(8, 3, 4, 4),), static)
    assert not same_layout({"x": torch.ones(8, 3, 4, 4)}, static)


def test_lr_factor_is_the_schedule_and_onecycle_warms_up_then_decays():
    for name in ("cosine", "step", "constant", "onecycle"):
        p = [nn.Parameter(torch.zeros(1))]
        cfg = TrainConfig(schedule=name, lr=1.0)
        opt = make_optimizer(p, cfg)
        sched = make_schedule(opt, cfg, total_steps=100)
        factor = lr_factor(name, 100)
        for step in range(100):
            assert opt.param_groups[0]["lr"] == factor(step), (name, step)
            opt.step()
            sched.step()
    one = [lr_factor("onecycle", 100)(s) for s in range(100)]
    assert one[0] == pytest.approx(1 / 15) and one[14] == 1.0 and max(one) == 1.0
    assert all(a > b for a, b in zip(one[14:], one[15:])) and one[-1] == pytest.approx(1 / 86)


def test_capturable_optimizer_keeps_its_lr_in_one_tensor():
    p = [nn.Parameter(torch.zeros(3))]
    for name in ("sgd", "adam", "adamw"):
        opt = make_optimizer(p, TrainConfig(optimizer=name, lr=0.5), graph_device=torch.device("cpu"))
        lr = opt.param_groups[0]["lr"]
        assert isinstance(lr, torch.Tensor) and float(lr) == 0.5
        p[0].grad = torch.ones(3)
        opt.step()
        assert opt.param_groups[0]["lr"] is lr  # the tensor a capture reads stays the one filled
    assert make_optimizer(p, TrainConfig(), graph_device=torch.device("cpu")).defaults["fused"] is True


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "onecycle"), ("adam", "cosine")])
def test_capturable_step_trains_like_the_plain_loop(digits, optimizer, schedule):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05 if optimizer == "sgd" else 1e-3, optimizer=optimizer,
                      schedule=schedule, grad_clip=1.0)
    m1, m2 = _lenet(), _lenet()
    plain = train_classifier(m1, digits, cfg, seed=3, device="cpu")
    graph_ready = train_classifier(m2, digits, replace(cfg, cuda_graph="eager"), seed=3, device="cpu")
    assert plain.cuda_graph == "not a CUDA device (cpu)" and "eagerly" in graph_ready.cuda_graph
    assert graph_ready.steps == plain.steps == 16
    assert graph_ready.final_loss == pytest.approx(plain.final_loss, rel=1e-4)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, atol=1e-5), (optimizer, (a - b).abs().max())


def test_the_default_on_cpu_is_the_plain_loop_bit_for_bit(digits):
    cfg = TrainConfig(epochs=1, batch_size=16)
    m1, m2 = _lenet(), _lenet()
    a = train_classifier(m1, digits, cfg, seed=1, device="cpu")
    b = train_classifier(m2, digits, replace(cfg, cuda_graph="off"), seed=1, device="cpu")
    assert a.final_loss == b.final_loss
    assert all(torch.equal(x, y) for x, y in zip(m1.parameters(), m2.parameters()))


def test_a_torch_that_cannot_step_the_capturable_optimizer_trains_eagerly(digits, monkeypatch):
    from searchlab.training import trainer

    def refuse(params, cfg, graph_device=None):
        if graph_device is not None:
            raise RuntimeError("no tensor learning rate here")
        return make_optimizer(params, cfg)

    monkeypatch.setattr(trainer, "make_optimizer", refuse)
    assert "no tensor learning rate" in probe_optimizer(lambda ps: refuse(ps, TrainConfig(), torch.device("cpu")),
                                                        torch.device("cpu"))
    stats = train_classifier(_lenet(), digits, TrainConfig(epochs=1, batch_size=32, cuda_graph="eager"), seed=0,
                             device="cpu")
    assert stats.steps == 4 and stats.cuda_graph.startswith("the capturable optimizer fails here (RuntimeError: no")


def test_an_uncaptured_step_reports_why():
    step = GraphedStep(_lenet(), lambda m, b: m(b[0]).sum(), make_optimizer(_lenet().parameters(), TrainConfig(),
                                                                             graph_device=torch.device("cpu")),
                       lr=0.1, factor=lambda s: 1.0, grad_clip=0.0, autocast=lambda cache: torch.no_grad(),
                       why_eager="not a CUDA device (cpu)")
    assert step.status == "not a CUDA device (cpu)"


def test_cuda_graph_setting_is_checked():
    with pytest.raises(ConfigError, match="cuda_graph must be one of auto, off, eager"):
        TrainConfig(cuda_graph="yes")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_captured_steps_match_the_same_steps_run_eagerly(digits):
    torch.backends.cudnn.deterministic = True
    try:
        cfg = TrainConfig(epochs=3, batch_size=16, amp=False)
        m1, m2 = _lenet(), _lenet()
        graphed = train_classifier(m1, digits, cfg, seed=0, device="cuda")
        eager = train_classifier(m2, digits, replace(cfg, cuda_graph="eager"), seed=0, device="cuda")
    finally:
        torch.backends.cudnn.deterministic = False
    assert graphed.cuda_graph == f"captured ({24 - WARMUP} steps replayed)"  # the rest ran eagerly to warm up
    assert graphed.final_loss == pytest.approx(eager.final_loss, rel=1e-5)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
