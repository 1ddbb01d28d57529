"""CycleGAN co-evolution: DEAP operators, the two-population strategy, fitness, fine-tuning, finalize, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab.evolvers import gan_coevolution as co
from searchlab.search_spaces import cyclegan as cg
from searchlab.errors import ConfigError
from searchlab.protocols import Context, ProtocolError, Result

TESTS = Path(__file__).resolve().parents[1]
MINI = TESTS / "data" / "horse2zebra_mini"
TINY = [4, 8, 16, 8, 4]


def write_checkpoints(folder: Path, discriminators: bool = True) -> Path:
    """A tiny CycleGAN checkpoint folder in the reference layout (random weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for side in "AB":
        torch.save(cg.ResnetGenerator(TINY, 2, affine=side == "A").state_dict(), folder / f"latest_net_G_{side}.pth")
        if discriminators:
            torch.save(cg.PatchDiscriminator(3, 4, 2).state_dict(), folder / f"latest_net_D_{side}.pth")
    return folder


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoints(tmp_path_factory.mktemp("ckpt"))


def make_space(ckpt: Path, **kw) -> cg.CycleganSpace:
    cfg = cg.CycleganConfig(checkpoints=str(ckpt), data=str(MINI), crop=32, finetune_steps=2, **kw)
    return cg.CycleganSpace.from_config(cfg)


def test_operators_are_deap_based_and_reproducible():
    from searchlab.evolvers import operators
    from searchlab.evolvers.deap_random import deap_random

    rng = np.random.default_rng(0)
    with deap_random(rng):
        x, y = operators.cx_two_point([1] * 20, [0] * 20)
    swapped = [i for i, c in enumerate(x) if c == 0]
    assert swapped and swapped == list(range(swapped[0], swapped[-1] + 1))  # one contiguous segment
    assert all({p, q} == {0, 1} for p, q in zip(x, y))  # bits exchanged, none lost
    masks, fitness = ["1" * 8, "0" * 7 + "1"], [1000.0, 1e-9]

    def picks(k, seed):
        with deap_random(np.random.default_rng(seed)):
            return operators.sel_roulette(masks, fitness, k)

    assert picks(50, 1).count("1" * 8) >= 49  # proportional to fitness
    assert picks(50, 1) == picks(50, 1)
    import random
    state = random.getstate()
    picks(3, 2)
    assert random.getstate() == state  # the global generator is left as it was


def test_next_generation_keeps_elite_and_size():
    gen = cg.ResnetGenerator(TINY, 2)
    rng = np.random.default_rng(0)
    pop = [cg.repair(rng.random(40) < 0.5, gen, rng) for _ in range(6)]
    fit = list(rng.random(6) + 0.1)
    nxt = co.next_generation(pop, fit, pop[2], 6, np.random.default_rng(3), lambda b, r: cg.repair(b, gen, r))
    assert len(nxt) == 6 and nxt[0] == pop[2] and len(set(nxt)) > 1
    assert nxt == co.next_generation(pop, fit, pop[2], 6, np.random.default_rng(3), lambda b, r: cg.repair(b, gen, r))


def test_fitness_follows_the_paper_formula(ckpt):
    space = make_space(ckpt)
    ev = co.GanFitness(space, co.GanFitnessConfig(), val_images=2)
    assert ev.mode == "discriminator"
    rng = np.random.default_rng(0)
    genome = {"side": "A", "mask": space.random_mask("A", rng), "partner": space.random_mask("B", rng)}
    r = ev.evaluate(genome, seed=0, device="cpu")
    o = r.objectives
    pruned = cg.channels_pruned(genome["mask"], space.generators["A"])
    assert r.ok and o["resemble"] > 0 and o["cycle"] > 0
    assert o["fitness"] == pytest.approx(500 / (o["resemble"] + 10 * o["cycle"]) + 0.001 * pruned)
    # the masked full generator scores the same as the rebuilt one
    masked = co.GanFitness(space, co.GanFitnessConfig(apply="mask"), val_images=2).evaluate(genome, seed=0, device="cpu")
    assert masked.objectives["fitness"] == pytest.approx(o["fitness"], rel=1e-4)
    # the default (auto) rebuilds on CPU: bit for bit what --apply rebuild gives
    rebuilt = co.GanFitness(space, co.GanFitnessConfig(apply="rebuild"), val_images=2).evaluate(genome, seed=0, device="cpu")
    assert co.GanFitnessConfig().apply == "auto" and rebuilt.objectives == o
    # the fallback compares generator outputs instead of discriminator outputs
    fid = co.GanFitness(space, co.GanFitnessConfig(fitness="fidelity"), val_images=2).evaluate(genome, seed=0, device="cpu")
    assert fid.objectives["resemble"] != pytest.approx(o["resemble"])
    assert fid.objectives["resemble"] == pytest.approx(2 * 4 / 10 ** (fid.objectives["psnr"] / 10), rel=1e-4)
    # keeping every channel is perfect fidelity; pruning more of a good mask lowers the fidelity
    full = ev.evaluate({"side": "B", "mask": cg.full_mask(space.generators["B"]), "partner": None}, seed=0, device="cpu")
    assert full.objectives["resemble"] == 0


def test_fallback_is_automatic_without_discriminators(tmp_path):
    space = make_space(write_checkpoints(tmp_path / "g", discriminators=False))
    assert co.GanFitness(space, co.GanFitnessConfig(), val_images=2).mode == "fidelity"
    with pytest.raises(ConfigError, match="needs D_A"):
        co.GanFitness(space, co.GanFitnessConfig(fitness="discriminator"))


def test_candidate_finetuning_changes_the_score(ckpt):
    space = make_space(ckpt)
    rng = np.random.default_rng(1)
    genome = {"side": "B", "mask": space.random_mask("B", rng), "partner": space.random_mask("A", rng)}
    plain = co.GanFitness(space, co.GanFitnessConfig(), val_images=2).evaluate(genome, seed=0, device="cpu")
    tuned = co.GanFitness(space, co.GanFitnessConfig(candidate_steps=3), val_images=2).evaluate(genome, seed=0,
                                                                                              device="cpu")
    again = co.GanFitness(space, co.GanFitnessConfig(candidate_steps=3), val_images=2).evaluate(genome, seed=0,
                                                                                              device="cpu")
    assert tuned.ok and tuned.objectives["fitness"] != pytest.approx(plain.objectives["fitness"])
    assert tuned.objectives["fitness"] == pytest.approx(again.objectives["fitness"])  # seeded


def run_strategy(strategy, ev, stop_after=None, batch=3):
    told = []
    while not strategy.finished():
        asked = strategy.ask(batch)
        assert asked, "a generation-wise strategy must offer work until it finishes"
        for g in asked:
            strategy.tell(g, ev.evaluate(g, seed=0, device="cpu"))
            told.append(g)
            if stop_after is not None and len(told) == stop_after:
                return told
    return told


def test_two_populations_evolve_in_turn_and_resume_identically(ckpt):
    space = make_space(ckpt)
    ev = co.GanFitness(space, co.GanFitnessConfig(fitness="fidelity"), val_images=1)
    cfg = co.CoevolutionConfig(population=4, generations=2)
    strategy = co.CoevolutionStrategy(space, cfg, seed=7)
    told = run_strategy(strategy, ev)
    assert [g["side"] for g in told] == list("AAAABBBB" * 3)
    assert all(g["partner"] is None for g in told[:8])
    # from round 1 on, the partner is the other side's best so far, and the elite leads each population
    def best_of(genomes):
        return genomes[int(np.argmax([ev.evaluate(g, seed=0, device="cpu").objectives["fitness"] for g in genomes]))]

    assert told[8]["mask"] == best_of(told[0:4])["mask"] and told[8]["partner"] == best_of(told[4:8])["mask"]
    assert told[12]["mask"] == best_of(told[4:8])["mask"] and told[12]["partner"] == best_of(told[8:12])["mask"]
    assert strategy.ask(5) == [] and len(strategy.history) == 6
    # a copy restored from the JSON state mid-generation behaves identically
    fresh = co.CoevolutionStrategy(space, cfg, seed=7)
    run_strategy(fresh, ev, stop_after=10, batch=1)  # the engine snapshots after each tell
    state = json.loads(json.dumps(fresh.state_dict()))
    clone = co.CoevolutionStrategy(space, cfg, seed=99)
    clone.load_state_dict(state)
    rest_a, rest_b = run_strategy(fresh, ev), run_strategy(clone, ev)
    assert rest_a == rest_b == told[10:]
    assert clone.best_pair() == strategy.best_pair()


def test_a_params_budget_holds_for_every_mask_of_both_generators(ckpt):
    space = make_space(ckpt, max_params="0.4")
    ev = co.GanFitness(space, co.GanFitnessConfig(fitness="fidelity"), val_images=1)
    strategy = co.CoevolutionStrategy(space, co.CoevolutionConfig(population=4, generations=2), seed=3)
    told = run_strategy(strategy, ev)
    assert len(told) == 4 * 2 * 3
    for genome in told:
        full = space.full_description(genome["side"])["params"]
        params = space.size(genome["side"], genome["mask"])
        assert params <= 0.4 * full
        if genome["partner"] is not None:
            other = space.other(genome["side"])
            assert space.size(other, genome["partner"]) <= 0.4 * space.full_description(other)["params"]
    from searchlab.errors import ConfigError
    with pytest.raises(ConfigError, match="--max-params 0.001 cannot be met"):
        make_space(ckpt, max_params="0.001")
    with pytest.raises(ConfigError, match="cannot be met"):  # said before the images are read
        cg.CycleganSpace.from_config(cg.CycleganConfig(checkpoints=str(ckpt), data="/no/such/folder",
                                                       max_params="0.001"))
    assert cg.CycleganConfig(checkpoints="c", data="d", max_params="").max_params == ""
    from searchlab import options
    assert options.build(cg.CycleganConfig, {"checkpoints": "c", "data": "d", "min_compression": 4}).max_params == "0.25"


def test_tell_out_of_order_is_refused(ckpt):
    space = make_space(ckpt)
    strategy = co.CoevolutionStrategy(space, co.CoevolutionConfig(population=2, generations=0), seed=0)
    a, b = strategy.ask(2)
    with pytest.raises(ProtocolError, match="coevolution"):
        strategy.tell(b, Result("ok", {"fitness": 1.0}))
    strategy.tell(a, Result.failed("boom"))
    strategy.tell(b, Result("ok", {"fitness": 1.0}))
    assert strategy.best["A"] == b["mask"]


def test_finalize_writes_pruned_generators_report_and_grid(ckpt, tmp_path):
    space = make_space(ckpt, max_params="0.5")
    strategy = co.CoevolutionStrategy(space, co.CoevolutionConfig(population=2, generations=0), seed=0)
    rng = np.random.default_rng(0)
    genome = {"side": "A", "mask": strategy.fit_mask("A", space.random_mask("A", rng)),
              "partner": strategy.fit_mask("B", space.random_mask("B", rng))}
    summary = co.finalize(space, None, {"id": 1, "genome": genome}, Context(run_dir=tmp_path, seed=0, device="cpu"))
    out = tmp_path / "cyclegan"
    report = json.loads((out / "report.json").read_text())
    assert report["masks"] == {"A": genome["mask"], "B": genome["partner"]}
    for side in "AB":
        r = report["sides"][side]
        assert r["param_ratio"] >= 2 and r["pruned"]["flops"] < r["full"]["flops"]
        assert np.isfinite(r["fidelity_before"]["psnr"]) and "fidelity_after" in r
        small = cg.load_generator(out / f"pruned_G_{side}.pth")
        assert cg.count_params(small) == r["pruned"]["params"]
    from PIL import Image

    grid = Image.open(out / "grid.png")
    assert grid.size[0] > 3 * 32 and grid.size[1] > 2 * 32  # one test image per side, with labels around them
    assert "G_A" in summary and "PSNR" in summary["G_A"]


def test_the_grid_labels_its_rows_and_columns():
    import matplotlib.pyplot as plt
    from searchlab.evolvers.gan_coevolution.finalize import grid_figure

    image = torch.zeros(3, 16, 16)
    fig = grid_figure([(image, image, image)] * 2, ["G_A: testA image 1", "G_B: testB image 1"])
    plt.close(fig)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "full generator", "pruned generator"]
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["G_A: testA image 1", "G_B: testB image 1"]


def test_command_line_search_and_bad_input(ckpt, tmp_path, capsys):
    from searchlab.cli import main

    run = tmp_path / "run"
    rc = main(["search", "cyclegan", "--checkpoints", str(ckpt), "--data", str(MINI), "--crop", "32",
               "--population", "2", "--generations", "1", "--finetune-steps", "1", "--seed", "0", "--run", str(run),
               "--quiet"])
    assert rc == 0
    assert (run / "cyclegan" / "grid.png").is_file() and (run / "cyclegan" / "pruned_G_B.pth").is_file()
    masks = json.loads((run / "cyclegan" / "masks.json").read_text())
    assert set(masks) == {"A", "B"}
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["search", "cyclegan", "--checkpoints", str(ckpt), "--data", str(tmp_path / "empty"),
                 "--run", str(tmp_path / "r2")]) == 2
    assert "trainA" in capsys.readouterr().err
    from PIL import Image

    mixed = tmp_path / "mixed"
    for part, size in (("trainA", (32, 32)), ("trainA", (40, 32)), ("trainB", (32, 32))):
        (mixed / part).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 120, 30)).save(mixed / part / f"{size[0]}.png")
    assert main(["search", "cyclegan", "--checkpoints", str(ckpt), "--data", str(mixed),
                 "--run", str(tmp_path / "r4")]) == 2
    err = capsys.readouterr().err
    assert "mixed sizes" in err and err.count("\n") == 1
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "latest_net_G_A.pth")
    assert main(["search", "cyclegan", "--checkpoints", str(tmp_path), "--data", str(MINI),
                 "--run", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not a CycleGAN ResnetGenerator" in err and err.count("\n") == 1
    (tmp_path / "mask.txt").write_text("101")
    assert main(["cyclegan", "prune", "--checkpoint", str(ckpt / "latest_net_G_A.pth"), "--mask",
                 str(tmp_path / "mask.txt"), "--out", str(tmp_path / "small.pth")]) == 2
    assert "3 bits but this generator needs 40" in capsys.readouterr().err
    assert main(["cyclegan", "prune", "--checkpoint", str(ckpt / "latest_net_G_A.pth"), "--mask",
                 str(run / "cyclegan" / "masks.json"), "--out", str(tmp_path / "small.pth")]) == 0
    assert cg.load_generator(tmp_path / "small.pth").widths == tuple(
        int(s.sum()) for s in cg.split_mask(masks["A"], cg.load_generator(ckpt / "latest_net_G_A.pth")))
    assert "parameters (" in capsys.readouterr().out
    assert main(["cyclegan", "compare", "--full", str(ckpt / "latest_net_G_A.pth"), "--pruned",
                 str(tmp_path / "small.pth"), "--data", str(MINI)]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert main(["cyclegan", "compare", "--full", str(ckpt / "latest_net_G_A.pth"), "--pruned",
                 str(tmp_path / "small.pth"), "--data", str(MINI), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["train"]["images"] == 2 and compared["test"]["images"] == 1
    assert 0 < compared["test"]["psnr"] < 100


def test_fallback_finetuning_moves_pruned_outputs_towards_the_full_generator(tmp_path):
    space = make_space(write_checkpoints(tmp_path / "g", discriminators=False))
    rng = np.random.default_rng(0)
    small = {"A": cg.prune(space.generators["A"], space.random_mask("A", rng))}
    before = co.fidelity(space, "A", small["A"], torch.device("cpu"))
    stats = co.finetune(space, small, steps=30, lr=1e-3, seed=0, device="cpu")
    after = co.fidelity(space, "A", small["A"], torch.device("cpu"))
    assert stats["steps"] == 30 and np.isfinite(stats["mean_loss"])
    assert after["psnr"] > before["psnr"] + 0.5


def test_a_stopped_run_resumes_to_the_same_trials(ckpt, tmp_path):
    from searchlab.cli import main
    from searchlab.store.run_store import RunStore

    common = ["--checkpoints", str(ckpt), "--data", str(MINI), "--crop", "16", "--population", "3",
              "--generations", "1", "--fitness", "fidelity", "--seed", "5", "--quiet", "--no-finalize"]
    assert main(["search", "cyclegan", *common, "--run", str(tmp_path / "whole")]) == 0
    assert main(["search", "cyclegan", *common, "--max-evals", "4", "--run", str(tmp_path / "split")]) == 0
    assert main(["resume", str(tmp_path / "split"), "--max-evals", "1000", "--quiet", "--no-finalize"]) == 0

    def trials(run):
        store = RunStore.open(run)
        try:
            return [(t.key, t.genome, t.result.objectives) for t in store.trials()]
        finally:
            store.close()

    whole, split = trials(tmp_path / "whole"), trials(tmp_path / "split")
    assert len(whole) == 12 and split == whole
