import json

import numpy as np
import pytest
import torch

from searchlab.predictors.guided_search import GuidedSearch, GuidedSearchConfig
from searchlab.predictors.renas import ReNASConfig, ReNASPredictor
from searchlab.predictors.semi_gcn import SemiGCNConfig, SemiGCNPredictor
from searchlab.errors import ConfigError
from searchlab.protocols import Result
from searchlab.search_spaces.nasbench101 import spec as nb_spec

CFG = GuidedSearchConfig(initial=24, top_k=4, rounds=2, pool=1500)
SHORT = GuidedSearchConfig(initial=24, top_k=4, rounds=3, pool=1500, shortlist=200)


def make(table, seed=5, config=CFG):
    return GuidedSearch([(ReNASPredictor, ReNASConfig(renas_epochs=4))], config, seed=seed,
                        objectives={"accuracy": "max"}, table=table)


def answer(table, genome):
    row = table.table.index_of(nb_spec.spec_hash(genome))
    return Result("ok", {"accuracy": float(table.target("test_accuracy")[row])})


def run(strategy, table, stop_after=None, batch=5, pending=()):
    """Ask/tell like the engine; stopping mid-batch leaves asked-but-untold genomes (returned)."""
    asked = []
    for g in pending:  # the engine re-evaluates trials left asked and tells them first on resume
        strategy.tell(g, answer(table, g))
    while not strategy.finished():
        genomes = strategy.ask(batch)
        assert genomes, "ask must give work whenever all earlier asks are told"
        for i, g in enumerate(genomes):
            asked.append(nb_spec.spec_hash(g))
            strategy.tell(g, answer(table, g))
            if stop_after is not None and len(asked) == stop_after:
                return asked, genomes[i + 1:]
    return asked, []


def test_queries_random_cells_then_predicted_top_k(table):
    s = make(table)
    asked, _ = run(s, table)
    assert len(asked) == 24 + 4 * 2 and len(set(asked)) == len(asked)
    pool = set(s.pool_rows().tolist())
    rows = [int(table.table.index_of(h)) for h in asked]
    assert set(rows) <= pool
    assert s.finished() and s.ask(3) == []


def test_top_k_are_the_predicted_best_unqueried_cells(table):
    s = make(table)
    first = s.ask(24)
    for g in first:
        s.tell(g, answer(table, g))
    pool = s.pool_rows()
    scores = s.fit_predictors()[0].predict(table.cells.take(pool)).astype(np.float64)  # same seed as the plan
    queried = [int(table.table.index_of(nb_spec.spec_hash(g))) for g in first]
    scores[np.isin(pool, queried)] = -np.inf
    expect = pool[np.argsort(-scores, kind="stable")[:4]].tolist()
    picks = [int(table.table.index_of(nb_spec.spec_hash(g))) for g in s.ask(10)]
    assert picks == expect


def test_consensus_picks_the_cells_with_the_best_worse_place(table):
    members = [(ReNASPredictor, ReNASConfig(renas_epochs=4)),
               (SemiGCNPredictor, SemiGCNConfig(unlabeled=200, gcn_epochs=20, rebuild_every=10))]
    s = GuidedSearch(members, CFG, seed=3, table=table, unlabeled=200)
    first = s.ask(24)
    for g in first:
        s.tell(g, answer(table, g))
    pool = s.pool_rows()
    fitted = s.fit_predictors()  # the same seeds as the plan
    assert [type(p) for p in fitted] == [ReNASPredictor, SemiGCNPredictor]
    queried = np.isin(pool, [int(table.table.index_of(nb_spec.spec_hash(g))) for g in first])
    places = []
    for p in fitted:
        scores = p.predict(table.cells.take(pool)).astype(np.float64)
        scores[queried] = -np.inf
        place = np.empty(len(pool), dtype=np.int64)
        place[np.argsort(-scores, kind="stable")] = np.arange(len(pool))
        places.append(place)
    worse = np.maximum(*places)
    picks = np.isin(pool, [int(table.table.index_of(nb_spec.spec_hash(g))) for g in s.ask(10)])
    assert picks.sum() == 4 and not (picks & queried).any()
    assert worse[picks].max() <= worse[~picks & ~queried].min()  # no other cell is placed better by both
    # and the picks are not simply one predictor's own top 4 (the two rankings disagree on this pool)
    assert any(not (np.sort(place[picks]) == np.arange(4)).all() for place in places)


def test_ask_waits_for_tells_before_refitting(table):
    s = make(table)
    first = s.ask(30)
    assert len(first) == 24 and s.ask(5) == []
    for g in first[:-1]:
        s.tell(g, answer(table, g))
    assert s.ask(5) == []
    s.tell(first[-1], answer(table, first[-1]))
    assert len(s.ask(10)) == 4


@pytest.mark.parametrize("config,cut", [(CFG, 10), (CFG, 24), (CFG, 26), (SHORT, 26), (SHORT, 30)])
def test_state_roundtrips_through_json_and_resumes_identically(table, config, cut):
    reference, _ = run(make(table, config=config), table)
    s = make(table, config=config)
    head, pending = run(s, table, stop_after=cut)
    state = json.loads(json.dumps(s.state_dict()))
    resumed = make(table, seed=99, config=config)  # the seed comes back from the state
    resumed.load_state_dict(state)
    tail, _ = run(resumed, table, pending=pending)
    assert head + [nb_spec.spec_hash(g) for g in pending] + tail == reference


def test_later_rounds_rank_the_first_fits_shortlist(table):
    s = make(table, config=SHORT)
    first = s.ask(24)
    for g in first:
        s.tell(g, answer(table, g))
    pool = s.pool_rows()
    scores = s.fit_predictors()[0].predict(table.cells.take(pool)).astype(np.float64)  # the first fit's seed
    scores[np.isin(pool, [int(table.table.index_of(nb_spec.spec_hash(g))) for g in first])] = -np.inf
    shortlist = set(pool[np.argsort(-scores, kind="stable")[:200]].tolist())
    asked, _ = run(s, table)
    later = [int(table.table.index_of(h)) for h in asked[4:]]  # rounds 2 and 3
    assert len(later) == 8 and set(later) <= shortlist
    assert sorted(s.candidates().tolist()) == sorted(shortlist)


def test_shortlist_smaller_than_the_rounds_queries_is_refused():
    with pytest.raises(ConfigError, match="shortlist"):
        GuidedSearchConfig(initial=50, top_k=10, rounds=3, shortlist=20)


def test_failed_results_are_not_trained_on(table):
    s = make(table)
    genomes = s.ask(24)
    for i, g in enumerate(genomes):
        s.tell(g, Result.failed("diverged") if i % 2 else answer(table, g))
    assert sum(v is None for _, v in s.history) == 12
    assert len(s.ask(10)) == 4


def test_pool_smaller_than_queries_is_refused(table):
    with pytest.raises(ConfigError, match="pool"):
        GuidedSearch([(ReNASPredictor, ReNASConfig())], GuidedSearchConfig(initial=50, top_k=10, pool=55), seed=0,
                     table=table)


def test_budget_note_says_when_max_evals_cuts_the_plan_short():
    config = GuidedSearchConfig(initial=424, top_k=10, rounds=1)
    assert config.budget_note(None) is None and config.budget_note(434) is None and config.budget_note(500) is None
    assert "every query is random" in config.budget_note(424)
    assert "before the last predicted picks" in config.budget_note(430)
    assert "= 434 queries" in config.budget_note(5)


def test_refits_fine_tune_the_first_fit_and_leave_it_unchanged(table, monkeypatch):
    s = make(table, config=SHORT)
    for g in s.ask(24):
        s.tell(g, answer(table, g))
    for g in s.ask(4):  # the first fit
        s.tell(g, answer(table, g))
    start = s.first_fit()[0]
    before = {k: v.clone() for k, v in start.net.state_dict().items()}
    tuned = []
    original = ReNASPredictor.fine_tune
    monkeypatch.setattr(ReNASPredictor, "fine_tune", lambda self, *a: tuned.append(a) or original(self, *a))
    assert len(s.ask(4)) == 4  # round 2 starts from the first fit
    assert len(tuned) == 1 and tuned[0][0] is start and tuned[0][3] == SHORT.refit_epochs
    assert all(torch.equal(before[k], v) for k, v in start.net.state_dict().items())


def test_fine_tune_starts_from_the_given_weights(table):
    rows = np.arange(0, 1500, 25)
    cells, y = table.cells.take(rows), table.target("test_accuracy")[rows]
    start = ReNASPredictor(ReNASConfig(renas_epochs=20), seed=1).fit(cells, y)
    probe = table.cells.take(np.arange(1, 1500, 7))
    tuned = ReNASPredictor(ReNASConfig(renas_lr=1e-7), seed=2).fine_tune(start, cells, y, 1)
    fresh = ReNASPredictor(ReNASConfig(renas_lr=1e-7, renas_epochs=1), seed=2).fit(cells, y)
    rho = lambda a, b: np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
    assert rho(tuned.predict(probe), start.predict(probe)) > 0.99
    assert rho(fresh.predict(probe), start.predict(probe)) < 0.9


def test_runs_stored_before_fine_tuning_refit_from_scratch(table, monkeypatch):
    s = make(table, config=SHORT)
    for g in s.ask(24):
        s.tell(g, answer(table, g))
    for g in s.ask(4):
        s.tell(g, answer(table, g))
    state = json.loads(json.dumps(s.state_dict()))
    del state["first_fit_from"]  # as an older searchlab stored it
    resumed = make(table, config=SHORT)
    resumed.load_state_dict(state)
    monkeypatch.setattr(ReNASPredictor, "fine_tune", lambda *a: pytest.fail("an old run must refit as it did"))
    assert len(resumed.ask(4)) == 4


def test_graph_transformer_refits_fine_tune_and_a_resumed_run_matches(table):
    from searchlab.predictors.graph_transformer import GraphTransformerPredictor
    from searchlab.predictors.graph_transformer_config import GraphTransformerConfig

    small = GraphTransformerConfig(gt_dim=16, gt_layers=1, gt_heads=2, gt_epochs=5, gt_min_steps=0, gt_ensemble=1,
                                   gt_pretrain_epochs=1, gt_pretrain_cells=500)
    plan = GuidedSearchConfig(initial=24, top_k=4, rounds=3, pool=1500, shortlist=200, refit_epochs=3)

    def gt(seed=5):
        return GuidedSearch([(GraphTransformerPredictor, small)], plan, seed=seed, table=table)

    tuned = []
    original = GraphTransformerPredictor.fine_tune
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GraphTransformerPredictor, "fine_tune", lambda self, *a: tuned.append(a[3]) or original(self, *a))
        reference, _ = run(gt(), table)
    assert tuned == [3, 3]  # rounds 2 and 3 start from the first fit
    s = gt()
    head, pending = run(s, table, stop_after=30)
    resumed = gt(seed=99)
    resumed.load_state_dict(json.loads(json.dumps(s.state_dict())))
    tail, _ = run(resumed, table, pending=pending)
    assert head + [nb_spec.spec_hash(g) for g in pending] + tail == reference
    # a run stored when only ReNAS fine-tuned (no "fine_tunes" in its state) goes on with fresh refits
    old = {k: v for k, v in s.state_dict().items() if k != "fine_tunes"}
    resumed = gt()
    resumed.load_state_dict(json.loads(json.dumps(old)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GraphTransformerPredictor, "fine_tune", lambda *a: pytest.fail("an old run must refit as it did"))
        run(resumed, table, pending=pending)
