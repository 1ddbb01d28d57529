"""Where a predictor-guided NAS-Bench-101 search spends its time, and what the shortlist changes.

  python bench/guided_speed.py --seed 0 --shortlist 0        # rank the whole table every round
  python bench/guided_speed.py --seed 0                       # the default shortlist
  python bench/guided_speed.py --seed 0 --predictor graph-transformer --refit-epochs 30

Runs the guided strategies' default plan (200 random cells + 6 rounds of 39) in-process with the
strategy's predictor options, answering from the table, and prints every fit's and prediction's wall
and CPU seconds, the whole search's, and the best cell's rank. With --shortlist 0 every round's
ranking of the whole table is kept, and for each later round it prints where its picks sat in the
first fit's ranking of the unqueried cells: a pick at position >= N is one a shortlist of N would
have missed (the run would differ). The graph transformer's pretraining must be cached (any fit
of it does that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlab.predictors.graph_transformer import GraphTransformerPredictor  # noqa: E402
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig  # noqa: E402
from searchlab.predictors.guided_search import GuidedSearch, GuidedSearchConfig  # noqa: E402
from searchlab.predictors.plugin import GraphTransformerSearchConfig  # noqa: E402
from searchlab.predictors.renas import ReNASConfig, ReNASPredictor  # noqa: E402
from searchlab.predictors.table import load_predictor_table  # noqa: E402
from searchlab.protocols import Result  # noqa: E402
from searchlab.search_spaces.nasbench101 import spec as nb_spec  # noqa: E402


def timed(cls):
    """The predictor class with every fit, fine-tuning and prediction timed, and whole-table scores kept."""

    class Timed(cls):
        log: list = []
        whole_table: list = []
        table_size = 0

        def _timed(self, what, call, cells, *args):
            t, c = time.perf_counter(), time.process_time()
            out = call(self, cells) if what == "predict_cells" else call(self, *args)
            self.log.append({what: len(cells), "wall_s": round(time.perf_counter() - t, 2),
                             "cpu_s": round(time.process_time() - c, 2)})
            return out

        def fit(self, cells, y, unlabeled=None):
            return self._timed("fit_cells", cls.fit, cells, cells, y, unlabeled)

        def fine_tune(self, start, cells, y, epochs):
            return self._timed("fine_tune_cells", cls.fine_tune, cells, start, cells, y, epochs)

        def predict(self, cells, *args, **kwargs):
            scores = self._timed("predict_cells", lambda p, c: cls.predict(p, c, *args, **kwargs), cells)
            if len(cells) == self.table_size:
                self.whole_table.append(scores.astype(np.float64))
            return scores

    return Timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shortlist", type=int, default=GuidedSearchConfig.shortlist)
    ap.add_argument("--initial", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=39)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--predictor", choices=["renas", "graph-transformer"], default="renas")
    ap.add_argument("--renas-epochs", type=int, default=ReNASConfig.renas_epochs)
    ap.add_argument("--gt-ensemble", type=int, default=GraphTransformerSearchConfig.gt_ensemble)
    ap.add_argument("--refit-epochs", type=int, default=GuidedSearchConfig.refit_epochs,
                    help="epochs of the later rounds' fine-tuning of the first fit (0 = fresh fits)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    table = load_predictor_table()
    y = table.target("test_accuracy")
    if args.predictor == "renas":
        predictor, options = timed(ReNASPredictor), ReNASConfig(renas_epochs=args.renas_epochs)
    else:
        predictor = timed(GraphTransformerPredictor)
        options = GraphTransformerConfig(gt_ensemble=args.gt_ensemble,
                                         gt_min_steps=GraphTransformerSearchConfig.gt_min_steps)
    predictor.table_size = len(table)
    plan = GuidedSearchConfig(initial=args.initial, top_k=args.top_k, rounds=args.rounds, shortlist=args.shortlist,
                              refit_epochs=args.refit_epochs)
    search = GuidedSearch([(predictor, options)], plan, seed=args.seed, table=table)
    rows: list[int] = []
    t0, c0 = time.perf_counter(), time.process_time()
    while not search.finished():
        for genome in search.ask(1):
            row = int(table.table.index_of(nb_spec.spec_hash(genome)))
            search.tell(genome, Result("ok", {"accuracy": float(y[row])}))
            rows.append(row)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    for entry in predictor.log:
        print(json.dumps(entry))
    best = max(y[rows])
    print(json.dumps({"seed": args.seed, "predictor": args.predictor, "shortlist": args.shortlist,
                      "refit_epochs": args.refit_epochs,
                      "threads": args.threads,
                      "search_wall_s": round(wall, 1), "search_cpu_s": round(cpu, 1), "best_accuracy": float(best),
                      "rank": int((y > best).sum()) + 1}))
    if len(predictor.whole_table) == plan.rounds:  # the first fit's ranking of the cells not yet queried
        first = predictor.whole_table[0].copy()
        first[rows[:plan.initial]] = -np.inf
        place = np.empty(len(first), np.int64)
        place[np.argsort(-first, kind="stable")] = np.arange(len(first))
        for r in range(1, plan.rounds):
            picks = np.array(rows[plan.initial + plan.top_k * r: plan.initial + plan.top_k * (r + 1)])
            print(json.dumps({"round": r + 1, "picks_max_place_in_first_fit": int(place[picks].max()),
                              "picks_median_place_in_first_fit": float(np.median(place[picks]))}))


if __name__ == "__main__":
    main()
