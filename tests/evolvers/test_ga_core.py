"""The GA core's policies, on a plain bit-string problem: the budget rule, ranking, elitism, parent
selection with the all-failed fallback, the per-generation record and the best so far."""

from __future__ import annotations

import numpy as np
import pytest

from searchlab.errors import ConfigError
from searchlab.evolvers import operators
from searchlab.evolvers.ga import GenerationalGA
from searchlab.size_target import repair_to_budget
from searchlab.protocols import Result
from searchlab.size_target import SizeBudget, parse_target

WEIGHTS = np.arange(1, 41, dtype=float)  # unit i costs i + 1: units of very different sizes


def size(bits: str) -> float:
    return float(WEIGHTS[[c == "1" for c in bits]].sum())


def shrink(bits: str, rng) -> str | None:
    on = [i for i, c in enumerate(bits) if c == "1"]
    if not on:
        return None
    i = int(rng.choice(on))
    return bits[:i] + "0" + bits[i + 1:]


def grow(bits: str, rng) -> str | None:
    off = [i for i, c in enumerate(bits) if c == "0"]
    if not off:
        return None
    i = int(rng.choice(off))
    return bits[:i] + "1" + bits[i + 1:]


class Bits:
    name = "bits"

    def key(self, g):
        return g


class CountOnes(GenerationalGA):
    """The smallest search on the core: fitness is the number of kept units, under a size budget."""

    def __init__(self, budget=None, seed=0):
        super().__init__(Bits(), seed, generations=3, budget=budget)
        self.pending = [self.fit_budget("1" * 40) for _ in range(4)]

    size, shrink, grow = staticmethod(size), staticmethod(shrink), staticmethod(grow)

    def score(self, genome, result):
        return float(result.objectives["ones"]) if result.ok else None

    def end_generation(self):
        self.record(self.members())

    def breed(self):
        parents = self.parents(self.pending, self.scores, 4, operators.sel_roulette)
        return [self.fit_budget(shrink(p, self.rng)) for p in parents]


def test_repair_lands_every_genome_in_the_band_under_the_limit():
    budget = SizeBudget("flops", limit=300.0, reference=size("1" * 40))
    rng = np.random.default_rng(0)
    for start in ("1" * 40, "0" * 40, "1" * 10 + "0" * 30, "0" * 30 + "1" * 10):
        fitted = repair_to_budget(start, budget, size, shrink, grow, rng)
        assert budget.floor <= size(fitted) <= budget.limit, (start, size(fitted))


def test_repair_leaves_an_unshrinkable_genome_over_budget():
    budget = SizeBudget("params", limit=10.0)
    assert repair_to_budget("1", budget, lambda g: 50.0, lambda g, r: None, grow, np.random.default_rng(0)) == "1"


def test_ranking_puts_feasible_first_then_less_over_then_fitness_and_keeps_order_on_ties():
    ga = CountOnes(SizeBudget("flops", limit=100.0))
    small, big, bigger = "1" * 5 + "0" * 35, "1" * 20 + "0" * 20, "1" * 40
    members = [{"genome": bigger, "fitness": 9.0}, {"genome": small, "fitness": 1.0},
               {"genome": big, "fitness": 5.0}, {"genome": small, "fitness": None},
               {"genome": small, "fitness": 1.0}]
    ranked = ga.ranked(members)
    assert ranked == [members[1], members[4], members[2], members[0], members[3]]
    assert ga.elites(members, 2) == [members[1], members[4]]


def test_parents_never_include_a_failure_unless_every_candidate_failed():
    ga = CountOnes()
    genomes = ["a", "b", "c", "d"]
    for _ in range(20):
        picked = ga.parents(genomes, [None, 3.0, None, 1.0], 6, operators.sel_roulette)
        assert set(picked) <= {"b", "d"}
    everyone_failed = ga.parents(genomes, [None] * 4, 40, operators.sel_roulette)
    assert len(everyone_failed) == 40 and set(everyone_failed) <= set(genomes) and len(set(everyone_failed)) > 1


def test_the_core_records_each_generation_and_the_best_so_far_within_budget():
    budget = SizeBudget("flops", limit=200.0, reference=size("1" * 40))
    ga = CountOnes(budget)
    told = 0
    while not ga.finished():
        for g in ga.ask(4):
            assert size(g) <= budget.limit
            ok = told % 3 != 2
            ga.tell(g, Result("ok", {"ones": g.count("1")}) if ok else Result.failed("boom"))
            told += 1
    assert [h["generation"] for h in ga.history] == [0, 1, 2]
    assert all(h["failed"] >= 1 for h in ga.history)
    assert all(h["best_size"] <= budget.limit for h in ga.history)
    assert ga.best_so_far["fitness"] == max(h["best"] for h in ga.history)
    assert ga.best_so_far["size"] <= budget.limit
    restored = CountOnes(budget)
    restored.load_state_dict(ga.state_dict())
    assert restored.best_so_far == ga.best_so_far and restored.history == ga.history


@pytest.mark.parametrize("text, message", [
    ("0", "must be above 0"), ("1.5", "is above 1"), ("abc", "is not a size"), ("-1", "is not a size"),
])
def test_bad_targets_are_refused_in_one_line(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_target(text, "flops")
    assert "\n" not in str(info.value)


def test_targets_read_as_fractions_or_absolute_counts():
    assert parse_target("", "flops") is None
    half = parse_target("0.5", "flops")
    assert not half.absolute and half.limit(80e6) == 40e6
    absolute = parse_target("330k", "params", ratio=False)
    assert absolute.absolute and absolute.limit(None) == 330e3
    with pytest.raises(ConfigError, match="no reference network"):
        parse_target("0.5", "params", ratio=False)
    assert parse_target("2", "flops", max_ratio=None).limit(10.0) == 20.0


def test_one_ga_vocabulary_and_the_old_names_still_read():
    from searchlab import options
    from searchlab.evolvers.binary_channel_search import BinaryGAConfig
    from searchlab.evolvers.filter_pruning import PruneGAConfig
    from searchlab.evolvers.gan_coevolution import CoevolutionConfig
    from searchlab.evolvers.sr_block_search import ESRNConfig

    shared = {"population", "generations", "cx_prob", "mut_prob"}
    for config in (PruneGAConfig, BinaryGAConfig, ESRNConfig, CoevolutionConfig):
        assert shared <= options.field_names(config), config
    for config in (PruneGAConfig, BinaryGAConfig, ESRNConfig):
        assert "elite" in options.field_names(config)
    sr = options.build(ESRNConfig, {"elites": 1, "crossover": 0.3, "mutation_rate": 0.2})  # a run stored before
    assert (sr.elite, sr.cx_prob, sr.mut_prob) == (1, 0.3, 0.2)
    gan = options.build(CoevolutionConfig, {"p_select": 0.3, "p_crossover": 0.6, "p_mutation": 0.1})
    assert (gan.cx_prob, gan.mut_prob) == (0.6, 0.1)
    assert options.build(BinaryGAConfig, {"tournament": 3}).tournament_size == 3
    with pytest.raises(ConfigError, match="--elite must be between 0"):
        ESRNConfig(population=4, elite=4)
    with pytest.raises(ConfigError, match="--cx-prob must be a probability"):
        PruneGAConfig(cx_prob=1.5)
