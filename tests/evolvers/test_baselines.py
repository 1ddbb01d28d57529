"""Random search and regularized evolution: the strategy contract and the algorithm's rules."""

import json

import numpy as np
import pytest

import plugins_for_tests
from searchlab.evolvers.aging_evolution import AgingEvolution, AgingEvolutionConfig
from searchlab.evolvers.random_search import RandomSearch
from searchlab.protocols import Result

SPACE = plugins_for_tests.BitsSpace(plugins_for_tests.BitsConfig(length=20))
EVAL = plugins_for_tests.WeightedOnes(plugins_for_tests.SlowConfig())
OBJ = EVAL.objectives


def drive(strategy, steps, start=0):
    history = []
    for i in range(start, start + steps):
        genome = strategy.ask(1)[0]
        strategy.tell(genome, EVAL.evaluate(genome, seed=i, device="cpu"))
        history.append(genome)
    return history


@pytest.mark.parametrize("make", [
    lambda: RandomSearch(SPACE, seed=5),
    lambda: AgingEvolution(SPACE, AgingEvolutionConfig(population=10, sample_size=4), seed=5, objectives=OBJ),
])
def test_state_round_trips_through_json(make):
    """After load_state_dict(json(state_dict())) a strategy continues exactly as the original."""
    original = make()
    drive(original, 25)
    clone = make()
    clone.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert drive(clone, 30, start=25) == drive(original, 30, start=25)


def test_aging_evolution_mutates_best_of_sample_and_ages_out_oldest():
    strategy = AgingEvolution(SPACE, AgingEvolutionConfig(population=6, sample_size=6), seed=1, objectives=OBJ)
    first = drive(strategy, 6)                               # the initial population: random samples
    assert len(strategy.population) == 6
    best = max(strategy.population, key=lambda m: m[1])[0]
    child = strategy.ask(1)[0]                               # S = P: the parent is the best member
    assert sum(a != b for a, b in zip(child, best)) == 1
    strategy.tell(child, EVAL.evaluate(child, seed=0, device="cpu"))
    assert len(strategy.population) == 6
    assert strategy.population[0][0] == first[1] and strategy.population[-1][0] == child  # oldest dropped


def test_failed_results_never_win_a_tournament():
    strategy = AgingEvolution(SPACE, AgingEvolutionConfig(population=4, sample_size=4), seed=2, objectives=OBJ)
    genomes = strategy.ask(4)
    for i, g in enumerate(genomes):
        strategy.tell(g, Result.failed("boom") if i else EVAL.evaluate(g, seed=0, device="cpu"))
    child = strategy.ask(1)[0]
    assert sum(a != b for a, b in zip(child, genomes[0])) == 1


def test_random_search_is_uniform_enough():
    strategy = RandomSearch(SPACE, seed=0)
    ones = np.mean([sum(g) for g in strategy.ask(400)])
    assert 9.5 < ones < 10.5
