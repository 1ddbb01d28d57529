"""The prune space on real MNIST digits: GA mechanics and resume, the masked fitness, finalize, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab import cli
from searchlab.evolvers.filter_pruning import MaskedFitness, PruneConfig, PruneGA, PruneGAConfig, load_pruned, make_space
from searchlab.evolvers.operators import mut_flip_run
from searchlab.search_spaces.filter_masks import prune_model
from searchlab.errors import ConfigError
from searchlab.protocols import Context, ProtocolError, Result
from searchlab.engine.seeding import trial_seed

MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist_mini"
DATA = f"mnist:{MNIST}"


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    run = tmp_path_factory.mktemp("prune")
    cfg = PruneConfig(data=DATA, test_size=200, val_size=200, pretrain_epochs=10, lr=0.05, batch_size=32)
    ctx = Context(run_dir=run, seed=0, device="cpu")
    space = make_space(cfg, ctx)
    return space, MaskedFitness(space, ctx), cfg, ctx


def _drive(strategy, evaluator, n_tells, start=0):
    """Ask/tell one at a time like the engine's local backend; returns the asked genomes."""
    asked = []
    for i in range(n_tells):
        (g,) = strategy.ask(1)
        asked.append(g)
        strategy.tell(g, evaluator.evaluate(g, seed=trial_seed(0, start + i + 1), device="cpu"))
    return asked


def test_pretraining_is_stored_once_and_reused(problem, monkeypatch):
    space, _, cfg, ctx = problem
    assert (ctx.run_dir / "pretrained.safetensors").is_file()
    import searchlab.training.trainer as trainer

    monkeypatch.setattr(trainer, "train_classifier", lambda *a, **k: pytest.fail("pretrained twice"))
    again = make_space(cfg, ctx)
    for a, b in zip(again.model.state_dict().values(), space.model.state_dict().values()):
        assert torch.equal(a, b)


def test_masked_fitness_formula_and_equivalence_with_pruned_network(problem):
    space, ev, cfg, _ = problem
    from searchlab.training.trainer import evaluate_classifier

    full = ev.evaluate("1" * space.n_bits, seed=1, device="cpu")
    acc_full = evaluate_classifier(space.model, space.problem.val, device="cpu")["accuracy"]
    assert full.objectives["accuracy"] == pytest.approx(acc_full)
    assert full.objectives["accuracy"] > 0.5  # a trained LeNet-5 on real digits
    assert full.objectives["fitness"] == pytest.approx((1 - cfg.lam) * acc_full)
    genome = "110111" + "1010101010101010"
    r = ev.evaluate(genome, seed=1, device="cpu")
    pruned = prune_model(space.model, space.plan, genome)
    assert r.objectives["accuracy"] == pytest.approx(evaluate_classifier(pruned, space.problem.val, device="cpu")["accuracy"])
    removed = 9 / 22
    assert r.objectives["fitness"] == pytest.approx((1 - cfg.lam) * r.objectives["accuracy"] + cfg.lam * removed)
    assert r.objectives["flops"] < full.objectives["flops"]


def test_ga_evolves_generations_keeps_elites_and_resumes_identically(problem):
    space, ev, _, _ = problem
    cfg = PruneGAConfig(population=6, generations=3, elite=1, mut_prob=0.8, segment_prob=0.5)
    ga = PruneGA(space, cfg, seed=3, objectives=ev.objectives)
    assert ga.pending[0] == "1" * space.n_bits
    first = _drive(ga, ev, 6)
    assert len(set(len(g) for g in first)) == 1
    best_gen0 = ga.history[0]["best_genome"]
    assert ga.pending[0] == best_gen0  # the elite survives unchanged
    _drive(ga, ev, 2, start=6)
    state = json.loads(json.dumps(ga.state_dict()))  # JSON only
    rest = _drive(ga, ev, 10, start=8)
    assert ga.finished() and ga.ask(1) == []
    assert [h["generation"] for h in ga.history] == [0, 1, 2]
    assert ga.history[2]["best"] >= ga.history[0]["best"]

    resumed = PruneGA(space, cfg, seed=99, objectives=ev.objectives)
    resumed.load_state_dict(state)
    assert _drive(resumed, ev, 10, start=8) == rest
    assert resumed.state_dict() == ga.state_dict()


def test_ga_waits_for_the_generation_and_checks_tell_order(problem):
    space, ev, _, _ = problem
    ga = PruneGA(space, PruneGAConfig(population=3, generations=2, selection="tournament", elite=0),
                 seed=0, objectives=ev.objectives)
    batch = ga.ask(5)
    assert len(batch) == 3 and ga.ask(1) == []
    with pytest.raises(ProtocolError, match="prune-ga"):
        ga.tell(batch[1], Result("ok", {"fitness": 0.5}))
    for g in batch:
        ga.tell(g, Result.failed("boom"))  # failures score 0 and the GA goes on
    assert len(ga.ask(3)) == 3 and not ga.finished()


def test_flip_run_flips_one_contiguous_run():
    rng = np.random.default_rng(0)
    bits = [1] * 40
    for _ in range(20):
        out = mut_flip_run(bits, rng)
        zeros = [i for i, b in enumerate(out) if b == 0]
        assert 1 <= len(zeros) <= 4 and zeros == list(range(zeros[0], zeros[-1] + 1))


def test_config_ranges():
    with pytest.raises(ConfigError, match="lam"):
        PruneConfig(data=DATA, lam=1.5)
    with pytest.raises(ConfigError, match="data"):
        PruneConfig()
    with pytest.raises(ConfigError, match="elite"):
        PruneGAConfig(population=4, elite=4)


def _cli(capsys, *args):
    code = cli.main(list(args))
    return code, capsys.readouterr()


def test_search_finalize_and_rebuild_end_to_end(problem, tmp_path, capsys):
    run = tmp_path / "run"
    weights = problem[3].run_dir / "pretrained.safetensors"
    args = ["search", "prune", "--data", DATA, "--test-size", "200", "--val-size", "200", "--weights", str(weights),
            "--batch-size", "32", "--population", "6", "--generations", "2", "--finetune-epochs", "1", "--lam", "0.2",
            "--seed", "1", "--run", str(run), "--quiet", "--json"]
    code, out = _cli(capsys, *args)
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["stopped_by"] == "finished" and summary["trials"] == 12
    final = summary["final"]
    report = json.loads((run / "pruned" / "report.json").read_text())
    assert (run / "pruned" / "filters.png").stat().st_size > 1000
    net = load_pruned(run / "pruned")
    from searchlab.search_spaces.filter_masks import measured_flops
    assert measured_flops(net, torch.zeros(1, 1, 28, 28)) == report["flops_after"] == final["flops_after"]
    assert report["flops_after"] <= report["flops_before"]
    assert sum(p.numel() for p in net.parameters()) == report["params_after"]
    # the rebuilt network is the fine-tuned one: it reproduces the reported test accuracy
    from searchlab.search_spaces.filter_masks.setup import _splits, PruneConfig as PC
    _, _, test, _ = _splits(PC(data=DATA, test_size=200, val_size=200))
    from searchlab.training.trainer import evaluate_classifier
    assert evaluate_classifier(net, test, device="cpu")["accuracy"] == pytest.approx(report["test_accuracy_after_finetune"])
    code, out = _cli(capsys, "pruned", str(run), "--data", DATA, "--device", "cpu")
    assert code == 0 and "filters kept: " in out.out and "accuracy " in out.out, out.err
    code, out = _cli(capsys, "pruned", str(run), "--data", DATA, "--device", "cpu", "--json")
    assert code == 0, out.err
    described = json.loads(out.out)
    assert described["flops"] == report["flops_after"] and described["images"] == 1000
    assert 0.0 <= described["accuracy"] <= 1.0
    code, out = _cli(capsys, "pruned", str(tmp_path))
    assert code == 2 and "architecture.json" in out.err
    # the report's trade-off: accuracy (%) against FLOPs, the unpruned network (the all-ones mask) starred
    tradeoff = _report_axes(run)
    assert tradeoff.get_xlabel() == "FLOPs (k)" and tradeoff.get_ylabel() == "accuracy (%)"
    legend = [t.get_text() for t in tradeoff.get_legend().get_texts()]
    assert legend == ["evaluated candidates", "Pareto front", "unpruned network"]
    star = next(line for line in tradeoff.get_lines() if line.get_label() == "unpruned network")
    assert star.get_xdata()[0] == pytest.approx(problem[0].full_cost["flops"] / 1e3)
    assert 10 < star.get_ydata()[0] <= 100  # a percentage, not a fraction


def _report_axes(run):
    """The trade-off panel of `searchlab report RUN --plot` for a finished run."""
    import matplotlib.pyplot as plt
    from searchlab.output.report import plot_figure
    from searchlab.store.run_view import RunView

    with RunView.open(run) as view:
        fig = plot_figure(view)
    plt.close(fig)
    progress, tradeoff = fig.axes
    assert progress.get_xlabel() == "evaluated candidates" and progress.get_ylabel() == "best fitness (higher is better)"
    return tradeoff


def test_resumed_run_matches_uninterrupted_run(tmp_path, capsys):
    common = ["--data", DATA, "--test-size", "200", "--val-size", "200", "--pretrain-epochs", "1", "--batch-size", "64",
              "--population", "5", "--generations", "3", "--seed", "2", "--quiet", "--json", "--no-finalize"]
    code, out = _cli(capsys, "search", "prune", *common, "--run", str(tmp_path / "a"))
    assert code == 0, out.err
    code, out = _cli(capsys, "search", "prune", *common, "--max-evals", "4", "--run", str(tmp_path / "b"))
    assert code == 0 and json.loads(out.out)["stopped_by"] == "max_evals"
    code, out = _cli(capsys, "resume", str(tmp_path / "b"), "--max-evals", "1000", "--quiet", "--json", "--no-finalize")
    assert code == 0, out.err
    from searchlab.store.run_store import RunStore
    with RunStore.open(tmp_path / "a") as a, RunStore.open(tmp_path / "b") as b:
        ta, tb = a.trials(), b.trials()
    assert [(t.key, t.result.objectives) for t in ta] == [(t.key, t.result.objectives) for t in tb]
    assert len(ta) == 15


@pytest.mark.parametrize("extra, message", [
    (["--lam", "1.5"], "lam must be in"),
    (["--layers", "conv9"], "not a convolution"),
    (["--weights", "NOTAFILE"], "does not exist"),
    (["--pretrain-epochs", "0"], "pass trained --weights PATH or --pretrain-epochs"),
    (["--max-flops", "0"], "--max-flops must be above 0"),
    (["--max-params", "1.5"], "--max-params 1.5 is above 1"),
    (["--max-flops", "0.001"], "--max-flops 0.001 cannot be met"),
    (["--max-flops", "0.5", "--max-params", "0.5"], "not both"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    code, out = _cli(capsys, "search", "prune", "--data", DATA, "--test-size", "200", "--val-size", "200",
                     "--pretrain-epochs", "1", "--run", str(tmp_path / "r"), "--quiet", *extra)
    assert code == 2
    assert out.err.startswith("error: ") and message in out.err and out.err.count("\n") == 1
    assert not (tmp_path / "r" / "run.sqlite").exists()


@pytest.mark.parametrize("target", ["0", "2", "1e9x", "0.001"])
def test_a_bad_target_is_refused_before_any_data_is_read(tmp_path, capsys, target):
    code, out = _cli(capsys, "search", "prune", "--data", f"mnist:{tmp_path / 'no-such-data'}", "--max-flops", target,
                     "--pretrain-epochs", "1", "--run", str(tmp_path / "r"), "--quiet")
    assert code == 2 and "--max-flops" in out.err and out.err.count("\n") == 1, out.err


def test_a_flops_target_is_met_by_every_candidate_and_reported(problem, tmp_path, capsys):
    run = tmp_path / "run"
    weights = problem[3].run_dir / "pretrained.safetensors"
    code, out = _cli(capsys, "search", "prune", "--data", DATA, "--test-size", "200", "--val-size", "200",
                     "--weights", str(weights), "--batch-size", "32", "--population", "6", "--generations", "3",
                     "--max-flops", "0.5", "--finetune-epochs", "0.5", "--seed", "3", "--run", str(run), "--quiet",
                     "--json")
    assert code == 0, out.err
    summary = json.loads(out.out)
    full = problem[0].full_cost["flops"]
    from searchlab.store.run_store import RunStore
    with RunStore.open(run) as store:
        flops = [t.result.objectives["flops"] for t in store.trials() if t.result and t.result.ok]
    assert len(flops) == 18 and max(flops) <= 0.5 * full  # the unpruned network of generation 0 was repaired too
    final = summary["final"]
    assert final["flops_after"] <= 0.5 * full and final["budget"]["limit"] == 0.5 * full
    report = json.loads((run / "pruned" / "report.json").read_text())
    assert report["budget"] == final["budget"]
    code, out = _cli(capsys, "status", str(run))
    assert code == 0 and "size budget: flops <= " in out.out, out.out
    # the report's trade-off marks the target and the unpruned network's size (it was repaired, so never scored)
    tradeoff = _report_axes(run)
    assert tradeoff.get_xlabel() == "FLOPs (k)" and tradeoff.get_ylabel() == "accuracy (%)"
    lines = {line.get_label(): line for line in tradeoff.get_lines()}
    target = next(line for label, line in lines.items() if label.startswith("size target"))
    unpruned = next(line for label, line in lines.items() if label.startswith("unpruned network"))
    assert target.get_xdata()[0] == pytest.approx(0.5 * full / 1e3) and unpruned.get_xdata()[0] == pytest.approx(full / 1e3)


def test_weights_that_are_not_a_state_dict_or_do_not_match(tmp_path, capsys):
    from searchlab.search_spaces.classifiers import build_classifier

    whole = tmp_path / "whole.pt"
    torch.save(build_classifier("lenet5"), whole)  # a pickled module, not a state dict
    wrong = tmp_path / "wrong.pt"
    torch.save(build_classifier("lenet5", num_classes=7).state_dict(), wrong)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    for path, message in ((whole, "not a state dict"), (wrong, "does not match the model"),
                          (listed, "not a state dict")):
        code, out = _cli(capsys, "search", "prune", "--data", DATA, "--test-size", "200", "--val-size", "200",
                         "--weights", str(path), "--run", str(tmp_path / "r"), "--quiet")
        assert code == 2 and message in out.err and out.err.count("\n") == 1, out.err


def test_empty_data_set_is_reported(tmp_path, capsys):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    code, out = _cli(capsys, "search", "prune", "--data", f"imagefolder:{tmp_path / 'empty'}", "--pretrain-epochs", "1",
                     "--run", str(tmp_path / "r"), "--quiet")
    assert code == 2 and out.err.startswith("error: ")


class SmallResidual(torch.nn.Module):
    """A user model: stem, one residual block (coupled channels) and a linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.c1, self.b1 = nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12)
        self.c2, self.b2 = nn.Conv2d(12, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(self.stem(x), 2)
        x = torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))
        return self.head(x.mean((2, 3)))


def small_residual(num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
    return SmallResidual(num_classes, in_channels)


def test_user_model_from_a_factory_with_safetensors_weights(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = tmp_path / "w.safetensors"
    save_file(small_residual().state_dict(), str(weights))
    cfg = PruneConfig(model=f"{__name__}:small_residual", weights=str(weights), data=DATA, test_size=200, val_size=200)
    space = make_space(cfg, Context(run_dir=None, seed=0, device="cpu"))
    # stem and c2 are joined by the residual add (8 bits), c1 is free (12 bits)
    assert space.n_bits == 8 + 12
    assert sorted(space.plan.groups[0]) == [("c2", 0), ("stem.0", 0)]
    result = MaskedFitness(space, Context(device="cpu")).evaluate("10" * 4 + "1" * 6 + "0" * 6, seed=0, device="cpu")
    assert result.ok and result.objectives["flops"] < space.full_cost["flops"]
    with pytest.raises(ConfigError, match="no callable"):
        make_space(PruneConfig(model=f"{__name__}:nope", data=DATA, test_size=200, val_size=200),
                   Context(seed=0, device="cpu"))


def _pruned_folder(parent, **changes):
    """A valid pruned/ folder of an unpruned LeNet-5 under `parent`, with `changes` in its architecture.json."""
    from safetensors.torch import save_file

    from searchlab.evolvers.filter_pruning import ARCH_FORMAT
    from searchlab.search_spaces.classifiers import build_classifier
    from searchlab.search_spaces.filter_masks import analyse

    folder = parent / "pruned"
    folder.mkdir(parents=True)
    net = build_classifier("lenet5")
    n_bits = analyse(net, torch.zeros(1, 1, 28, 28)).n_bits
    save_file(net.state_dict(), str(folder / "model.safetensors"))
    arch = {"format": ARCH_FORMAT, "model": "lenet5", "model_kwargs": {"num_classes": 10, "in_channels": 1,
            "image_size": 28}, "input_shape": [1, 1, 28, 28], "layers": [], "genome": "1" * n_bits, **changes}
    (folder / "architecture.json").write_text(json.dumps(arch))
    return folder


def test_a_pruned_folder_cannot_make_searchlab_run_code(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = _pruned_folder(tmp_path / "good")
    assert sum(p.numel() for p in load_pruned(good).parameters()) == 61706
    crafted = _pruned_folder(tmp_path / "crafted", model="subprocess:run",
                             model_kwargs={"args": "touch pwned", "shell": True})
    code, out = _cli(capsys, "pruned", str(crafted))
    assert code == 2 and not (tmp_path / "pwned").exists()
    assert len(out.err.strip().splitlines()) == 1 and "model_kwargs" in out.err
    # a user factory with harmless arguments is still only built when the user names it
    user = _pruned_folder(tmp_path / "user", model="subprocess:getoutput", model_kwargs={})
    code, out = _cli(capsys, "pruned", str(user))
    assert code == 2 and "does not import code" in out.err and "--model subprocess:getoutput" in out.err
    code, out = _cli(capsys, "pruned", str(user), "--model", "other:factory")
    assert code == 2 and "is not the model" in out.err
    for i, changes in enumerate(({"genome": "12"}, {"input_shape": [1, 1, 28]}, {"model_kwargs": {"width": 2}},
                                 {"model": "resnet20", "model_kwargs": {"image_size": 32}})):
        code, out = _cli(capsys, "pruned", str(_pruned_folder(tmp_path / f"bad{i}", **changes)))
        assert code == 2 and len(out.err.strip().splitlines()) == 1, out.err
    (good / "architecture.json").write_text("{not json")
    code, out = _cli(capsys, "pruned", str(good))
    assert code == 2 and "not valid JSON" in out.err


def test_resuming_a_finished_run_does_not_redo_the_final_step(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["search", "prune", "--data", DATA, "--test-size", "200", "--val-size", "200", "--pretrain-epochs", "1",
            "--batch-size", "64", "--population", "4", "--generations", "2", "--finetune-epochs", "1", "--seed", "4",
            "--run", str(run), "--quiet", "--json"]
    code, out = _cli(capsys, *args)
    assert code == 0, out.err
    first = json.loads(out.out)["final"]
    weights = run / "pruned" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    code, out = _cli(capsys, "resume", str(run), "--json")
    assert code == 0 and json.loads(out.out)["final"] == first
    assert "the final step already ran for these trials" in out.err and weights.stat().st_mtime_ns == stamp
    code, out = _cli(capsys, "resume", str(run), "--json", "--finalize-again", "--quiet")
    assert code == 0 and weights.stat().st_mtime_ns != stamp


def test_a_user_model_is_found_in_the_current_directory(tmp_path):
    import subprocess
    import sys

    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n\n\ndef build(num_classes=10, in_channels=1):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))\n")
    script = Path(sys.executable).with_name("searchlab")  # the installed command, which does not add '.'
    out = subprocess.run([str(script), "search", "prune", "--model", "mynets:build", "--data", DATA, "--test-size",
                          "200", "--val-size", "200", "--pretrain-epochs", "1", "--population", "3", "--generations",
                          "1", "--finetune-epochs", "0", "--run", "r", "--quiet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_a_network_that_lost_most_of_its_accuracy_is_flagged():
    from searchlab.evolvers.filter_pruning.finalize import lost_most

    assert lost_most(0.86, 0.1230, 10)  # the 12.30% LeNet-5 run: near chance
    assert lost_most(0.90, 0.40, 10)
    assert not lost_most(0.90, 0.85, 10)
    assert not lost_most(0.14, 0.13, 10)  # a network that was never far above chance has nothing to lose
