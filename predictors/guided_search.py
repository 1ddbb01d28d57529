"""Predictor-guided search on a table space (NAS-Bench-101, NAS-Bench-201): query random cells, fit a
predictor, query its top k.

1. Ask `initial` cells drawn at random from the candidate pool (every cell of the table, or a
   seeded random sample of `pool` cells).
2. When all their results are told, fit the predictor on every successful result so far, rank the
   pool and ask the `top_k` best-predicted cells not yet queried.
3. Repeat step 2 `rounds` times (each round refits on everything queried so far). Only the first
   fit ranks the whole pool; it keeps its `shortlist` best-predicted cells and later rounds rank
   those (ranking every cell of NAS-Bench-101 is about half of a ReNAS round's time on a CPU).
   Predictors that can (ReNAS, the graph transformer) refit later rounds by training a copy of the
   first fit for `refit_epochs` epochs on everything queried so far, instead of from scratch.

The state is JSON: the queried table rows with their results, the queue, the round counter and the
RNG state. No weights are stored: a refit uses a seed derived from (strategy seed, round), so
resuming replans exactly what the uninterrupted run would have (the first fit, the shortlist's source
and the refits' start, is rebuilt by repeating it). Works with any `Predictor`.

With several predictors (the `consensus` strategy: ReNAS and the assessor), each ranks the pool
and a cell's place is its worse place of the two; the picks are the cells both rank highest. Two
different families rarely share their mistakes at the top, so the picks they agree on are more
often truly good than either's own top k (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from searchlab.predictors.base import Predictor
from searchlab.predictors.table import load_predictor_table
from searchlab.errors import ConfigError
from searchlab.objectives import sign
from searchlab.options import build, opt, to_dict
from searchlab.protocols import Result, Strategy
from searchlab.engine.seeding import make_rng, rng_from_state, rng_state


@dataclass(frozen=True)
class GuidedSearchConfig:
    """Predictor-guided search options"""

    initial: int = opt(424, help="random cells queried before the first predictor fit")
    top_k: int = opt(10, help="predicted-best cells queried after each fit")
    rounds: int = opt(1, help="fit -> query top-k rounds; each refits on everything queried so far")
    pool: int = opt(0, help="candidate pool: 0 = every cell of the table, N = a seeded random sample of N cells")
    shortlist: int = opt(20000, help="the first fit ranks the whole pool; later rounds rank only its N best-predicted "
                                     "cells (0 = the whole pool every round)")
    refit_epochs: int = opt(60, help="later rounds train a copy of the first fit for this many epochs on every query so "
                                     "far, where the predictor can (ReNAS, graph-transformer); 0 = a fresh fit every "
                                     "round")

    def __post_init__(self) -> None:
        if self.initial < 2:
            raise ConfigError(f"--initial must be >= 2 (the predictor needs cells to learn from), got {self.initial}")
        if self.top_k < 1 or self.rounds < 0 or self.pool < 0 or self.shortlist < 0 or self.refit_epochs < 0:
            raise ConfigError("--top-k must be >= 1, --rounds >= 0, --pool >= 0, --shortlist >= 0 and "
                              "--refit-epochs >= 0")
        if 0 < self.shortlist < self.top_k * self.rounds:
            raise ConfigError(f"--shortlist {self.shortlist} is smaller than the cells the rounds query "
                              f"({self.rounds} x {self.top_k}); raise it or use 0 (rank the whole pool every round)")

    @property
    def planned_queries(self) -> int:
        """Queries until the search finishes: the budget to give it (`--max-evals`)."""
        return self.initial + self.top_k * self.rounds

    def budget_note(self, max_evals: int | None) -> str | None:
        """Say so when --max-evals ends the run before its planned queries (silently random otherwise)."""
        planned = self.planned_queries
        if max_evals is None or max_evals >= planned:
            return None
        what = ("before the predictor is fitted, so every query is random" if max_evals <= self.initial
                else "before the last predicted picks")
        return (f"--max-evals {max_evals} stops {what}: the plan is --initial {self.initial} + --rounds "
                f"{self.rounds} x --top-k {self.top_k} = {planned} queries; raise --max-evals or lower --initial "
                f"(or resume later with `searchlab resume RUN --max-evals {planned}`)")


class GuidedSearch(Strategy):
    """Ask random cells, then the predictor's top-k picks; see the module docstring."""

    def __init__(self, predictors: Sequence[tuple[type[Predictor], Any]], config: GuidedSearchConfig, *,
                 seed: int, objectives: dict[str, str] | None = None, table=None, unlabeled: int = 0,
                 space: str = "nasbench101") -> None:
        if not predictors:
            raise ConfigError("guided search needs at least one predictor")
        self.predictors = [(cls, predictor_config) for cls, predictor_config in predictors]  # (class, config)
        self.config = config
        self.seed = int(seed)
        self.objectives = dict(objectives or {"accuracy": "max"})
        self.primary = next(iter(self.objectives))
        self.sign = sign(self.objectives[self.primary])
        self.table = table if table is not None else load_predictor_table(space=space)
        self.unlabeled = int(unlabeled)
        if config.pool and config.pool < config.planned_queries:
            raise ConfigError(f"--pool {config.pool} is smaller than the cells to query "
                              f"({config.initial} + {config.top_k} x {config.rounds}); raise --pool or use 0 (all)")
        self.rng = make_rng(self.seed)
        self.started = False
        self.round = 0
        self.queue: list[int] = []  # table rows planned, not yet asked
        self.outstanding: list[int] = []  # asked, waiting for their tell (in ask order)
        self.history: list[list] = []  # [row, value or None] in tell order
        self.last_fit: dict[str, Any] = {}
        self.shortlist_from: int | None = None  # queries the shortlist-building first fit saw
        self.first_fit_from: int | None = None  # queries the first fit saw (absent in older runs: fresh refits)
        self._shortlist: np.ndarray | None = None  # rebuilt on resume, never stored
        self._first: list[Predictor] | None = None  # the first fit; rebuilt on resume, never stored
        self.fine_tunes = any(cls.fine_tunes for cls, _ in self.predictors)  # whether later rounds may fine-tune

    # ---- pool ---------------------------------------------------------------------------------
    def pool_rows(self) -> np.ndarray:
        n = len(self.table)
        if not self.config.pool or self.config.pool >= n:
            return np.arange(n)
        return np.sort(make_rng(self.seed + 7919).choice(n, self.config.pool, replace=False))

    def _genome(self, row: int):
        if self.table.space != "nasbench101":
            return self.table.table.arch(int(row))  # NAS-Bench-201 genomes are arch strings
        return self.table.table.genome(int(row))

    def _row(self, genome: Any) -> int:
        if self.table.space != "nasbench101":
            from searchlab.search_spaces.nasbench201 import spec as nb201_spec
            return int(self.table.table.index(nb201_spec.validate(genome)))
        from searchlab.search_spaces.nasbench101 import spec as nb_spec
        return int(self.table.table.index_of(nb_spec.spec_hash(genome)))

    # ---- planning -----------------------------------------------------------------------------
    def _plan(self) -> None:
        if not self.started:
            pool = self.pool_rows()
            self.queue = [int(r) for r in self.rng.choice(pool, min(self.config.initial, len(pool)), replace=False)]
            self.started = True
            return
        if self.round >= self.config.rounds:
            return
        self.queue = [int(r) for r in self.plan_top_k()]
        self.round += 1

    def fit_predictors(self, history: list[list] | None = None, round_: int | None = None,
                       start: list[Predictor] | None = None) -> list[Predictor]:
        """Fit predictors on every successful query so far (or of `history`), seeds derived from the
        round: fresh, or those that can fine-tune from their member of `start`."""
        history = self.history if history is None else history
        round_ = self.round if round_ is None else round_
        done = [(r, v) for r, v in history if v is not None]
        if len(done) < 2:
            raise ConfigError("fewer than 2 successful queries to fit the predictor on; raise --initial")
        rows = np.array([r for r, _ in done])
        y = np.array([v for _, v in done], dtype=np.float64)
        fit_seed = int(np.random.SeedSequence([self.seed, round_]).generate_state(1)[0] % (2**31))
        unlabeled = None
        if self.unlabeled:
            known = set(int(r) for r, _ in history)
            pool = self.pool_rows()
            picks = make_rng(fit_seed).choice(pool, min(len(pool), self.unlabeled + len(known)), replace=False)
            picks = np.array([p for p in picks if int(p) not in known][:self.unlabeled], dtype=np.int64)
            unlabeled = self.table.cells.take(picks)
        fitted = []
        for i, (cls, predictor_config) in enumerate(self.predictors):
            seed = fit_seed if i == 0 else int(np.random.SeedSequence([self.seed, round_, i])
                                                .generate_state(1)[0] % (2**31))
            member = cls(predictor_config, seed=seed)
            if start is not None and cls.fine_tunes:
                fitted.append(member.fine_tune(start[i], self.table.cells.take(rows), y, self.config.refit_epochs))
            else:
                fitted.append(member.fit(self.table.cells.take(rows), y, unlabeled))
        return fitted

    def first_fit(self) -> list[Predictor]:
        """The first round's fitted predictors (the shortlist's source, the refits' start); a resumed run
        rebuilds them by repeating the first fit on the same queries with the same seeds."""
        if self._first is None:
            from searchlab import progress

            history = self.history[:self.first_fit_from if self.first_fit_from is not None else self.shortlist_from]
            with progress.step(f"repeating the first fit on {len(history):,} cells"):
                self._first = self.fit_predictors(history, 0)
        return self._first

    def _fine_tuning(self) -> bool:
        return self.round > 0 and self.config.refit_epochs > 0 and self.first_fit_from is not None and self.fine_tunes

    def _shortlisting(self, pool: np.ndarray) -> bool:
        return 0 < self.config.shortlist < len(pool)

    def candidates(self) -> np.ndarray:
        """The rows this round ranks: the pool, or after the first fit its shortlist (the first fit's
        best-predicted cells). A resumed run rebuilds the shortlist by repeating the first fit."""
        pool = self.pool_rows()
        if self.round == 0 or self.shortlist_from is None or not self._shortlisting(pool):
            return pool
        if self._shortlist is None:
            from searchlab import progress

            fitted = self.first_fit()
            with progress.step(f"rebuilding the shortlist: ranking {len(pool):,} cells"):
                order, _ = self._ranked(pool, fitted, [r for r, _ in self.history[:self.shortlist_from]],
                                        self.config.shortlist)
                self._shortlist = np.sort(pool[order])
        return self._shortlist

    def _ranked(self, rows: np.ndarray, fitted: list[Predictor], queried, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions in `rows` of the `k` best-predicted cells not in `queried`, best first, and the
        predictors' scores of `rows`."""
        scores = np.stack([p.predict(self.table.cells.take(rows)).astype(np.float64) for p in fitted])
        scores[:, np.isin(rows, np.asarray(sorted(set(int(r) for r in queried)), dtype=np.int64))] = -np.inf
        k = min(k, int(np.isfinite(scores[0]).sum()))
        if len(scores) == 1:
            return np.argsort(-scores[0], kind="stable")[:k], scores
        # place = position in a predictor's ranking (0 = best); order by the worse place, then the sum
        places = np.empty(scores.shape, dtype=np.int64)
        for member, order in zip(places, np.argsort(-scores, axis=1, kind="stable")):
            member[order] = np.arange(len(order))
        return np.lexsort((places.sum(axis=0), places.max(axis=0)))[:k], scores

    def plan_top_k(self) -> list[int]:
        from searchlab import progress

        pool = self.pool_rows()
        rows = self.candidates()
        labelled = sum(v is not None for _, v in self.history)
        names = " + ".join(cls.kind or cls.__name__ for cls, _ in self.predictors)
        queried = {int(r) for r, _ in self.history} | set(self.outstanding)
        with progress.step(f"round {self.round + 1}: fitting {names} on {labelled:,} queried cells, ranking "
                           f"{len(rows):,}"):
            fitted = self.fit_predictors(start=self.first_fit() if self._fine_tuning() else None)
            if self.round == 0:
                self._first, self.first_fit_from = fitted, len(self.history)
            keep = self.config.shortlist if self.round == 0 and self._shortlisting(pool) else self.config.top_k
            order, scores = self._ranked(rows, fitted, queried, max(keep, self.config.top_k))
        if self.round == 0 and self._shortlisting(pool):  # in row order, as the pool: ties break alike
            self._shortlist, self.shortlist_from = np.sort(rows[order]), len(self.history)
        best = order[:self.config.top_k]
        self.last_fit = {"round": self.round + 1, "trained_on": labelled,
                         "predicted_best": [float(s[best[0]]) for s in scores] if len(best) else None}
        return [int(rows[i]) for i in best]

    # ---- ask / tell ---------------------------------------------------------------------------
    def ask(self, n: int) -> list[dict]:
        if not self.queue and not self.outstanding:
            self._plan()
        rows, self.queue = self.queue[:max(n, 0)], self.queue[max(n, 0):]
        self.outstanding.extend(rows)
        return [self._genome(r) for r in rows]

    def tell(self, genome: Any, result: Result) -> None:
        row = self._row(genome)
        if row in self.outstanding:
            self.outstanding.remove(row)
        value = None
        if result.ok and self.primary in result.objectives:
            value = self.sign * float(result.objectives[self.primary])
        self.history.append([row, value])

    def finished(self) -> bool:
        return self.started and self.round >= self.config.rounds and not self.queue and not self.outstanding

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"seed": self.seed, "rng": rng_state(self.rng), "started": self.started, "round": self.round,
                "queue": list(self.queue), "outstanding": list(self.outstanding),
                "history": [list(h) for h in self.history], "last_fit": dict(self.last_fit),
                "shortlist_from": self.shortlist_from, "first_fit_from": self.first_fit_from,
                "fine_tunes": self.fine_tunes}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.rng = rng_from_state(state["rng"])
        self.started, self.round = bool(state["started"]), int(state["round"])
        self.queue = [int(r) for r in state["queue"]]
        self.outstanding = [int(r) for r in state["outstanding"]]
        self.history = [[int(r), None if v is None else float(v)] for r, v in state["history"]]
        self.last_fit = dict(state.get("last_fit", {}))
        shortlist_from = state.get("shortlist_from")  # absent in runs that ranked the whole pool every round
        self.shortlist_from, self._shortlist = None if shortlist_from is None else int(shortlist_from), None
        first_fit_from = state.get("first_fit_from")  # absent in runs made before refits fine-tuned
        self.first_fit_from, self._first = None if first_fit_from is None else int(first_fit_from), None
        fine_tunes = state.get("fine_tunes")  # absent in runs made when only ReNAS fine-tuned its refits
        self.fine_tunes = bool(fine_tunes) if fine_tunes is not None else \
            any(cls.fine_tunes and cls.kind == "renas" for cls, _ in self.predictors)


def strategy_factory(*predictor_classes: type[Predictor]):
    """The registry factory (space, config, *, seed, objectives) -> GuidedSearch with these predictors."""

    def factory(space, config, *, seed: int, objectives: dict[str, str]) -> GuidedSearch:
        values = to_dict(config)
        guided = build(GuidedSearchConfig, values, where="strategy options")
        members = [(cls, build(cls.Config, values, where="predictor options")) for cls in predictor_classes]
        return GuidedSearch(members, guided, seed=seed, objectives=objectives,
                            unlabeled=int(values.get("unlabeled", 0)), space=getattr(space, "name", "nasbench101"))

    return factory
