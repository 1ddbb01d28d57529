"""ESRN strategy (credits, JSON state, resume), the proxy evaluator, finalize and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab import cli
from searchlab.evolvers.deap_random import deap_random
from searchlab.evolvers.operators import sel_roulette
from searchlab.evolvers.sr_block_search import (ESRNConfig, ESRNStrategy, SRProxyConfig, SRProxyEvaluator, block_credits,
                                                cx_segment, finalize, psnr_weights)
from searchlab.search_spaces.sr_blocks import (BLOCK_TYPES, SRBlockSpace, load_model, super_resolve, uniform_chain,
                                               used_blocks)
from searchlab.errors import ConfigError, DataError
from searchlab.protocols import Context, Result

SET5 = Path(__file__).resolve().parents[1] / "data" / "set5"


def _space(**kw):
    return SRBlockSpace(**{"scale": 2, "g0": 16, "slots": 8, "min_blocks": 2, "params": "15k:40k", **kw})


def _fitness(space, genome):
    """A synthetic fitness: SRDB blocks are good, everything else is neutral (a known right answer)."""
    blocks = used_blocks(genome)
    return 30.0 + sum(b["type"] == "SRDB" for b in blocks) / len(blocks)


def _drive(strategy, space, n_tells, ask_size=3):
    seen = []
    while len(seen) < n_tells and not strategy.finished():
        batch = strategy.ask(ask_size)
        assert batch, "a generation must be asked before it is told"
        for g in batch:
            strategy.tell(g, Result("ok", {"psnr": _fitness(space, g)}))
            seen.append(space.key(g))
    return seen


def test_a_params_budget_is_met_by_every_network_within_2_percent_or_at_its_largest():
    from searchlab.search_spaces.sr_blocks.config import SRSpaceConfig, make_space
    from searchlab.search_spaces.sr_blocks.mutation import block_steps

    space = make_space(SRSpaceConfig(scale=2, g0=16, slots=8, min_blocks=2, max_params="30k"))
    strategy = ESRNStrategy(space, ESRNConfig(population=6, generations=3, elite=1), seed=4)
    sizes = []
    while not strategy.finished():
        for g in strategy.ask(10):
            sizes.append(space.params(g))
            # the repair rule: within 2% under the budget, or no one-unit step up still fits
            larger = [space.params(s) for s in block_steps(g, +1, space.min_blocks)]
            assert sizes[-1] <= 30_000 and (sizes[-1] >= 0.98 * 30_000 or min(larger) > 30_000), sizes[-1]
            strategy.tell(g, Result("ok", {"psnr": _fitness(space, g)}))
    assert len(sizes) == 6 + 5 + 5
    assert min(sizes) >= 0.9 * 30_000, sizes
    assert strategy.history[-1]["best_size"] <= 30_000


def test_generations_elites_and_finish():
    space = _space()
    strategy = ESRNStrategy(space, ESRNConfig(population=5, generations=3, elite=2), seed=0)
    first = strategy.ask(10)
    assert len(first) == 5 and strategy.ask(1) == []  # waits for the generation's tells
    for g in first:
        strategy.tell(g, Result("ok", {"psnr": _fitness(space, g)}))
    second = strategy.ask(10)
    assert len(second) == 3  # 2 elites are carried, not re-evaluated
    for g in second:
        assert 15_000 <= space.params(g) <= 40_000
        strategy.tell(g, Result.failed("boom"))  # failures are tolerated
    assert not strategy.finished()
    third = strategy.ask(10)
    for g in third:
        strategy.tell(g, Result("ok", {"psnr": _fitness(space, g)}))
    assert strategy.finished() and len(strategy.history) == 3


def test_state_round_trips_through_json_and_resumes_identically():
    space = _space()
    cfg = ESRNConfig(population=4, generations=4, elite=1)
    a = ESRNStrategy(space, cfg, seed=7)
    _drive(a, space, 6, ask_size=1)  # stop in the middle of the second generation ...
    (pending,) = a.ask(1)            # ... with one candidate asked but not told
    state = json.loads(json.dumps(a.state_dict()))
    b = ESRNStrategy(space, cfg, seed=123)
    b.load_state_dict(state)
    assert b.state_dict() == a.state_dict()
    for s in (a, b):
        s.tell(pending, Result("ok", {"psnr": _fitness(space, pending)}))
    assert _drive(a, space, 40) == _drive(b, space, 40)
    assert a.finished() and b.finished() and a.state_dict() == b.state_dict()


def test_block_credits_formula():
    slot = lambda kind, used=1: {"used": used, "type": kind, "convs": 4, "growth": 8, "out": 16}  # noqa: E731
    pop = [{"blocks": [slot("SRDB"), slot("SRDB")]}, {"blocks": [slot("GRDB"), slot("SRDB", 0)]},
           {"blocks": [slot("CRDB"), slot("GRDB")]}]
    fitness = [32.0, 31.0, 30.0]
    types, positions = block_credits(pop, fitness, 2)
    z = (np.array(fitness) - 31.0) / np.std(fitness)
    assert types["SRDB"] == pytest.approx(z[0])
    assert types["GRDB"] == pytest.approx((z[1] + z[2]) / 2)
    assert types["CRDB"] == pytest.approx(z[2])
    assert positions[0] is None  # every individual uses slot 0: nothing to compare
    assert positions[1] == pytest.approx((z[0] + z[2]) / 2 - z[1])


def test_credits_learn_the_good_block_and_bias_mutation():
    space = _space()
    strategy = ESRNStrategy(space, ESRNConfig(population=8, generations=3, elite=1), seed=1)
    _drive(strategy, space, 8)
    probs = strategy.type_probs()
    assert probs[BLOCK_TYPES.index("SRDB")] == max(probs) and probs.sum() == pytest.approx(1)
    plain = ESRNStrategy(space, ESRNConfig(population=8, generations=3, elite=1, credits=False), seed=1)
    _drive(plain, space, 8)
    assert plain.type_probs() is None and plain.use_probs() is None


def test_credits_beat_uniform_mutation_on_a_known_landscape():
    space = _space()
    means = {}
    for credits in (True, False):
        finals = []
        for seed in range(4):
            s = ESRNStrategy(space, ESRNConfig(population=6, generations=6, elite=1, credits=credits,
                                               credit_strength=4.0, mut_prob=0.3), seed=seed)
            _drive(s, space, 1000)
            finals.append(s.history[-1]["mean"])
        means[credits] = np.mean(finals)
    assert means[True] > means[False]


def test_deap_operators_are_deterministic_and_leave_global_random_alone():
    import random

    random.seed(5)
    before = random.random()
    random.seed(5)
    genomes = [uniform_chain(k, 2, convs=4, growth=8, out=16, slots=4) for k in BLOCK_TYPES]
    weights = psnr_weights([30.0, 31.0, 35.0])
    with deap_random(np.random.default_rng(0)):
        picks1 = sel_roulette(genomes, weights, 50)
    with deap_random(np.random.default_rng(0)):
        picks2 = sel_roulette(genomes, weights, 50)
    assert picks1 == picks2 and random.random() == before
    assert sum(p is genomes[2] for p in picks1) > sum(p is genomes[0] for p in picks1)
    a, b = cx_segment(genomes[0], genomes[1], np.random.default_rng(3))
    kinds = [s["type"] for s in a["blocks"]] + [s["type"] for s in b["blocks"]]
    assert sorted(kinds) == sorted(["SRDB"] * 4 + ["GRDB"] * 4)


@pytest.fixture(scope="module")
def tiny_train(tmp_path_factory):
    """Set5 as a (very) small training folder; one image is held out for validation."""
    folder = tmp_path_factory.mktemp("train")
    for f in SET5.glob("*.png"):
        shutil.copy(f, folder / f.name)
    return folder


def _evaluator(train, **kw):
    space = SRBlockSpace(scale=2, g0=8, slots=4, min_blocks=1, params="3k:12k")
    kw = {"epochs_per_candidate": 1, "crops_per_image": 2, "patch": 12, "batch_size": 4, "val_images": 1,
          "val_crop": 48, "final_epochs": 2, **kw}
    cfg = SRProxyConfig(train=str(train), **kw)
    return space, SRProxyEvaluator(space, cfg, Context(seed=0, device="cpu"))


def test_proxy_evaluation_is_real_and_deterministic(tiny_train):
    space, evaluator = _evaluator(tiny_train)
    genome = space.sample(np.random.default_rng(0))
    r1 = evaluator.evaluate(genome, seed=3, device="cpu")
    r2 = evaluator.evaluate(genome, seed=3, device="cpu")
    assert r1.ok, r1.error
    assert 20 < r1.objectives["psnr"] < 50 and 0 < r1.objectives["ssim"] <= 1
    assert r1.objectives["psnr"] == r2.objectives["psnr"]
    assert r1.objectives["params"] == space.params(genome) and r1.cost["epochs"] == pytest.approx(1.0)


def test_finalize_scores_sets_saves_picture_and_model(tiny_train, tmp_path):
    space, evaluator = _evaluator(tiny_train, eval_sets=[f"set5:{SET5}"])
    genome = space.sample(np.random.default_rng(1))
    summary = finalize(space, evaluator, {"id": 1, "key": space.key(genome), "genome": genome, "result": None},
                       Context(run_dir=tmp_path, seed=0, device="cpu"))
    s5 = summary["sets"]["set5"]
    assert s5["images"] == 5 and s5["bicubic"]["psnr"] == pytest.approx(33.68, abs=0.05)
    assert np.isfinite(s5["searched"]["psnr"])
    assert summary["quality_status"] == (s5["searched"]["psnr"] <= s5["bicubic"]["psnr"])  # flagged: not above bicubic
    assert ("bicubic upscaling" in summary.get("warning", "")) == bool(summary["quality_status"])
    assert (tmp_path / "sr_comparison.png").stat().st_size > 1000
    net = load_model(tmp_path / "model")
    lr = torch.randint(0, 256, (3, 10, 14), dtype=torch.uint8)
    assert super_resolve(net, lr).shape == (3, 20, 28)
    assert json.loads((tmp_path / "sr_summary.json").read_text())["params"] == space.params(genome)
    (tmp_path / "model" / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(DataError, match="not an exported SR model"):
        load_model(tmp_path / "model")


def test_bad_data_is_reported(tmp_path, tiny_train):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        _evaluator(empty)
    with pytest.raises(DataError, match="smaller than"):
        _evaluator(tiny_train, patch=200)
    with pytest.raises(ConfigError, match="--train"):
        SRProxyEvaluator(_space(), SRProxyConfig())
    with pytest.raises(ConfigError, match="--eval"):
        SRProxyConfig(train="x", eval_sets=["Set5"])


@pytest.mark.parametrize("flags,message", [
    (["--scale", "5"], "scale"),
    (["--params", "1k:2k"], "no network meets"),
    (["--train", "EMPTY"], "no images"),
    (["--max-params", "1k"], "no network meets --max-params 1k"),
    (["--max-params", "0.5"], "no reference network"),
    (["--max-params", "0"], "must be above 0"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, flags, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    flags = [str(empty) if f == "EMPTY" else f for f in flags]
    base = ["search", "sr", "--train", str(SET5), "--run", str(tmp_path / "run"), "--quiet"]
    code = cli.main(base + flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_cli_search_resume_and_finalize(tmp_path, tiny_train):
    run = tmp_path / "run"
    flags = ["search", "sr", "--g0", "8", "--slots", "4", "--min-blocks", "1", "--params", "3k:12k",
             "--train", str(tiny_train), "--val-images", "1", "--val-crop", "48", "--patch", "12",
             "--batch-size", "4", "--crops-per-image", "2", "--epochs-per-candidate", "0.5", "--final-epochs", "0.5",
             "--eval", f"set5:{SET5}", "--population", "3", "--generations", "2", "--elites", "1",
             "--device", "cpu", "--seed", "1", "--run", str(run), "--quiet", "--max-evals", "3", "--no-finalize"]
    assert cli.main(flags) == 0
    assert cli.main(["resume", str(run), "--quiet", "--max-evals", "10"]) == 0
    assert (run / "model" / "model.safetensors").exists() and (run / "sr_comparison.png").exists()
