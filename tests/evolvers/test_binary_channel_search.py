"""The binary channel GA (budget, elitism, JSON state), the training evaluator and the command line."""

import json
from pathlib import Path

import numpy as np
import pytest

from searchlab.errors import ConfigError
from searchlab.protocols import Context, Result
from searchlab.evolvers.binary_channel_search import (
    BinaryChannelGA, BinaryGAConfig, BinaryTrainConfig, BinaryTrainEvaluator, fitness,
)
from searchlab.search_spaces.binary_widths import BinarySpaceConfig, BinaryWidthSpace, build_network

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "data" / "cifar10_mini"


@pytest.fixture(scope="module")
def space():
    return BinaryWidthSpace(BinarySpaceConfig(net="vgg-small"))


TARGET = [4, 0, 3, 1, 2, 0]


def synthetic(genome):
    """A stand-in score with one optimum, so the GA's mechanics can be checked fast."""
    return Result("ok", {"accuracy": 1.0 - 0.05 * sum(abs(a - b) for a, b in zip(genome, TARGET))})


def drive(strategy, limit=10_000, stop_after=None):
    asked = []
    while not strategy.finished() and len(asked) < limit:
        batch = strategy.ask(3)
        if not batch:
            raise AssertionError("ask returned nothing before the generation was told")
        for g in batch:
            asked.append(g)
            strategy.tell(g, synthetic(g))
            if stop_after is not None and len(asked) == stop_after:
                return asked
    return asked


def test_fitness_formula():
    assert fitness(Result("ok", {"accuracy": 0.8}), 1.5, 0.1) == pytest.approx(0.65)
    assert fitness(Result("ok", {"accuracy": 0.8}), 1.5, 0.0) == pytest.approx(0.8)
    assert fitness(Result.failed("nan loss"), 1.0, 0.1) is None


def test_generations_budget_and_elitism(space):
    cfg = BinaryGAConfig(population=6, generations=5, max_flops="2")
    ga = BinaryChannelGA(space, cfg, seed=1)
    first = ga.ask(100)
    assert len(first) == 6 and first[0] == space.one_x()  # the 1x network seeds generation 0
    assert ga.ask(5) == []  # waiting for this generation's results
    for g in first:
        ga.tell(g, synthetic(g))
    best = [max(m["fitness"] for m in ga.population)]
    asked = list(first)
    while not ga.finished():
        batch = ga.ask(100)
        assert len(batch) == 5  # population minus one elite
        for g in batch:
            ga.tell(g, synthetic(g))
        asked += batch
        best.append(max(m["fitness"] for m in ga.population))
    assert ga.generation == 5 and ga.ask(4) == []
    assert all(a <= b for a, b in zip(best, best[1:]))  # elitism: never loses its best
    assert best[-1] > best[0]
    assert all(space.cost_ratio(g) <= 2.0 + 1e-9 for g in asked)  # hard budget
    # repair toward the budget: each code is within 2% under it, or no layer can step up without breaking it
    for g in asked[1:]:
        wider = [g[:i] + [g[i] + 1] + g[i + 1:] for i in range(len(g)) if g[i] + 1 < len(space.ratios)]
        assert space.cost_ratio(g) >= 0.98 * 2.0 or all(space.cost_ratio(w) > 2.0 for w in wider), g
    assert ga.history[-1]["generation"] == 4 and ga.best_so_far["size"] <= 2.0 * space.base_cost()
    assert len({space.key(g) for g in asked}) == len(asked)  # no code proposed twice


def test_state_round_trips_through_json(space):
    cfg = BinaryGAConfig(population=5, generations=4, max_flops="3", lam=0.02)
    reference = drive(BinaryChannelGA(space, cfg, seed=7))
    first = BinaryChannelGA(space, cfg, seed=7)
    head = drive(first, stop_after=8)  # stop in the middle of generation 1
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed = BinaryChannelGA(space, cfg, seed=999)
    resumed.load_state_dict(state)
    assert head + drive(resumed) == reference
    assert drive(BinaryChannelGA(space, cfg, seed=8)) != reference


def test_the_old_budget_name_still_reads_and_0_still_means_none():
    from searchlab import options

    assert options.build(BinaryGAConfig, {"max_flops_ratio": 3.0}).max_flops == "3"
    assert options.build(BinaryGAConfig, {"max_flops_ratio": 0}).target is None
    assert options.build(BinaryGAConfig, {}).target.value == 2.0


def test_budget_that_no_candidate_meets(space):
    with pytest.raises(ConfigError, match="no candidate meets --max-flops 0.1"):
        BinaryChannelGA(space, BinaryGAConfig(max_flops="0.1"), seed=0)
    with pytest.raises(ConfigError, match="--elite"):
        BinaryGAConfig(population=4, elite=4)


def test_evaluator_trains_a_candidate_on_real_images(space):
    small = BinaryWidthSpace(BinarySpaceConfig(net="vgg-small", width_scale=0.0625))
    cfg = BinaryTrainConfig(data=f"imagefolder:{MINI}", train_size=0, val_fraction=0.2, val_size=0,
                            epochs_per_candidate=1, batch_size=32)
    ev = BinaryTrainEvaluator(small, cfg, Context(seed=0))
    genome = [1, 2, 1, 1, 1, 0]
    r1 = ev.evaluate(genome, seed=5, device="cpu")
    r2 = ev.evaluate(genome, seed=5, device="cpu")
    assert r1.ok, r1.error
    assert 0.0 <= r1.objectives["accuracy"] <= 1.0
    assert r1.objectives == r2.objectives  # seeded: the same candidate scores the same
    d = small.describe(genome)
    assert r1.objectives["flops_bops64"] == d["flops_bops64"]
    assert r1.objectives["cost_ratio"] == pytest.approx(d["cost_ratio"])
    train, val, _, _ = ev.splits()
    assert len(train) + len(val) == 200 and len(val) == 40
    with pytest.raises(ConfigError, match="--data"):
        BinaryTrainEvaluator(small, BinaryTrainConfig(), Context())


def _cli(capsys, *args):
    """Run the command line in this process; returns (exit code, stdout, stderr)."""
    from searchlab import cli

    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_search_end_to_end_writes_plot_and_final_model(tmp_path, capsys):
    run = tmp_path / "run"
    code, stdout, stderr = _cli(capsys, "search", "binary", "--net", "vgg-small", "--data", f"imagefolder:{MINI}", "--width-scale", "0.0625",
               "--population", "3", "--generations", "2", "--epochs-per-candidate", "1", "--train-size", "0",
               "--val-size", "0", "--final-epochs", "1", "--batch-size", "32", "--max-flops-ratio", "2.0",
               "--device", "cpu", "--quiet", "--json", "--run", str(run))
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["evaluated"] == 5  # 3 + (3 - 1 elite)
    final = summary["final"]
    assert final["best_cost_ratio"] <= 2.0 + 1e-9 and (run / "pareto.png").stat().st_size > 10_000
    info = json.loads((run / "best_model.json").read_text())
    from safetensors.torch import load_file
    model = build_network("vgg-small", info["ratios"], width_scale=info["width_scale"])
    model.load_state_dict(load_file(run / "best_model.safetensors"))  # the saved model rebuilds exactly
    assert info["ratios"] == final["best_ratios"]
    details = json.loads((run / "final.json").read_text())
    assert len(details["candidates"]) == 5
    code, stdout, stderr = _cli(capsys, "resume", run, "--quiet", "--json", "--no-finalize")
    assert code == 0, stderr
    assert json.loads(stdout)["trials"] == 5


@pytest.mark.parametrize("args,message", [
    (["--net", "alexnet"], "alexnet"),
    (["--max-flops", "0.05"], "no candidate meets --max-flops 0.05"),
    (["--max-flops-ratio", "0.05"], "no candidate meets --max-flops 0.05"),
    (["--ratios", "0.5", "-1"], "ratios must be positive"),
    (["--data", "nope:x"], "data spec"),
])
def test_search_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    base = ["search", "binary", "--data", f"imagefolder:{MINI}", "--run", str(tmp_path / "r"), "--quiet"]
    code, _, stderr = _cli(capsys, *base, *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], stderr
    assert not (tmp_path / "r" / "run.sqlite").exists()


@pytest.mark.parametrize("args,message", [
    (["--ratios", "1", "1", "1"], "vgg-small takes 6 ratios, got 3"),
    (["--ratios", "1", "1", "1", "1", "1", "5"], "ratio 5 is not allowed"),
    (["--net", "resnet18", "--preset", "vgg-auto-b"], "is for vgg-small"),
    (["--net", "lenet"], "unknown network"),
])
def test_binary_describe_errors(capsys, args, message):
    code, _, stderr = _cli(capsys, "binary", "describe", *args)
    assert code == 2 and stderr.startswith("error:") and message in stderr, stderr


def test_binary_describe_presets(capsys):
    code, stdout, stderr = _cli(capsys, "binary", "describe", "--net", "vgg-small", "--json")
    assert code == 0, stderr
    rows = {r["name"]: r for r in json.loads(stdout)}
    assert set(rows) == {"binary-1x", "full-precision", "vgg-auto-a", "vgg-auto-b"}
    assert rows["binary-1x"]["cost_ratio"] == 1.0
    assert rows["full-precision"]["flops"] == 607_600_640
    assert rows["vgg-auto-b"]["ratios"] == [2, 2, 4, 2, 4, 0.5]
    assert np.isclose(rows["vgg-auto-a"]["flops_bops64"],
                      rows["vgg-auto-a"]["flops"] + rows["vgg-auto-a"]["bops"] / 64)


def test_failed_candidates_lose_and_the_search_goes_on(space):
    ga = BinaryChannelGA(space, BinaryGAConfig(population=4, generations=3, elite=1), seed=3)
    first = ga.ask(4)
    ga.tell(first[0], Result.failed("non-finite loss"))
    for g in first[1:]:
        ga.tell(g, synthetic(g))
    assert ga.carried[0]["genome"] != first[0] and ga.carried[0]["fitness"] is not None
    assert len(ga.ask(10)) == 3
    with pytest.raises(RuntimeError, match="did not ask"):
        ga.tell([0] * 6, synthetic([0] * 6))


@pytest.mark.slow
def test_stopped_search_resumes_to_the_same_trials(tmp_path, capsys):
    common = ["--net", "vgg-small", "--data", f"imagefolder:{MINI}", "--width-scale", "0.0625", "--population", "3",
              "--generations", "2", "--epochs-per-candidate", "1", "--train-size", "60", "--val-size", "20",
              "--batch-size", "32", "--device", "cpu", "--quiet", "--json", "--no-finalize"]
    code, _, err = _cli(capsys, "search", "binary", *common, "--run", tmp_path / "whole")
    assert code == 0, err
    code, _, err = _cli(capsys, "search", "binary", *common, "--max-evals", "2", "--run", tmp_path / "split")
    assert code == 0, err  # stopped by the budget in the middle of generation 0
    code, stdout, err = _cli(capsys, "resume", tmp_path / "split", "--max-evals", "100", "--quiet", "--json",
                             "--no-finalize")
    assert code == 0 and json.loads(stdout)["stopped_by"] == "finished", err
    from searchlab.store.run_store import RunStore

    def trials(run):
        store = RunStore.open(run)
        try:
            return [(t.key, t.result.objectives) for t in store.trials()]
        finally:
            store.close()

    assert trials(tmp_path / "split") == trials(tmp_path / "whole")
    assert len(trials(tmp_path / "whole")) == 5
