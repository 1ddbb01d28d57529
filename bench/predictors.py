"""Predictor benchmarks on the bundled NAS-Bench-101 table: ranking quality, guided search, speed.

  python bench/predictors.py --part kendall --seeds 0 1 2 3 4 --test-cells 0
  python bench/predictors.py --part search --search-seeds 20
  python bench/predictors.py --part speed

kendall: train on N random cells (the split seed draws them), test on the remaining cells (all, or
  a seeded sample of --test-cells); baseline: the table's FLOPs column used as a predictor.
search:  --initial random queries + --top-k predicted-best (434 queries) vs random search and
  regularized evolution with the same number of unique queries; best cell's accuracy and its rank,
  and how many of the queries were among the 0.1% best cells of the table.
speed:   predict all 423,624 cells (encodings cached on disk), ReNAS on 424 cells, the assessor with
  424 labelled + 10,000 unlabelled cells, the graph transformer on 424 cells (its label-free
  pretraining reported apart: done once and cached). Baseline: building the encodings from scratch.
Results are printed and, with --out, written as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlab.evolvers.aging_evolution import AgingEvolution, AgingEvolutionConfig  # noqa: E402
from searchlab.predictors.blend import BlendPredictor  # noqa: E402
from searchlab.predictors.configs import BlendConfig  # noqa: E402
from searchlab.predictors.graph_transformer import GraphTransformerPredictor  # noqa: E402
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig  # noqa: E402
from searchlab.predictors.guided_search import GuidedSearchConfig  # noqa: E402
from searchlab.predictors.metrics import kendall_tau, precision_at_k, spearman_rho  # noqa: E402
from searchlab.predictors.renas import ReNASConfig, ReNASPredictor  # noqa: E402
from searchlab.predictors.semi_gcn import SemiGCNConfig, SemiGCNPredictor  # noqa: E402
from searchlab.predictors.table import load_predictor_table  # noqa: E402
from searchlab.protocols import Result  # noqa: E402

PUBLISHED = {"ReNAS": (0.657, 0.816), "Neural Predictor": (0.679, 0.769), "TNASP": (0.705, 0.820),
             "PINAT": (0.772, 0.846), "GMAE-NAS": (0.732, 0.775), "PINAT + BCE": (0.812, 0.854)}


def renas_config(args, n_labels: int) -> ReNASConfig:
    options = {"renas_orders": args.renas_orders, "renas_average_from": args.renas_average_from,
               "renas_lr": args.renas_lr, "renas_dropout": args.renas_dropout}
    if n_labels > 1000:  # each large-set option applies when given
        options.update({k: v for k, v in (("renas_epochs", args.large_epochs), ("renas_batch", args.large_batch)) if v})
    return ReNASConfig(**options)


def gcn_config(args) -> SemiGCNConfig:
    return SemiGCNConfig(unlabeled=args.unlabeled, knn=args.knn, gcn_epochs=args.gcn_epochs)


def gt_config(args) -> GraphTransformerConfig:
    return GraphTransformerConfig(gt_ensemble=args.gt_ensemble, gt_epochs=args.gt_epochs, gt_batch=args.gt_batch,
                                  gt_lr=args.gt_lr, gt_encoder_lr_scale=args.gt_encoder_lr_scale,
                                  gt_min_steps=args.gt_min_steps, gt_pretrain_epochs=args.gt_pretrain_epochs,
                                  gt_dropout=args.gt_dropout, gt_weight_decay=args.gt_weight_decay)


def make_predictor(kind: str, seed: int, args, n_labels: int):
    if kind == "blend":
        gt, gcn = gt_config(args), gcn_config(args)
        return BlendPredictor(BlendConfig(**dataclasses.asdict(gt), **dataclasses.asdict(gcn),
                                          blend_weight=args.blend_weight), seed=seed)
    if kind == "renas":
        return ReNASPredictor(renas_config(args, n_labels), seed=seed)
    if kind == "graph-transformer":
        return GraphTransformerPredictor(gt_config(args), seed=seed)
    return SemiGCNPredictor(gcn_config(args), seed=seed)


def part_kendall(args, table, y) -> list[dict]:
    rows = []
    flops = table.target("flops")
    for kind in args.kinds:
        for n in args.sizes:
            for seed in args.seeds:
                order = np.random.default_rng(seed).permutation(len(table))
                train, rest = order[:n], order[n:]
                test = rest if not args.test_cells else np.sort(
                    np.random.default_rng(seed + 1000).choice(rest, args.test_cells, replace=False))
                pred = make_predictor(kind, seed, args, n)
                unl = None
                if kind in ("semi-gcn", "blend"):
                    unl = table.cells.take(rest[-args.unlabeled:])  # never the held-out-100 cells below
                t0, c0 = time.perf_counter(), time.process_time()
                pred.fit(table.cells.take(train), y[train], unl)
                fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
                t0 = time.perf_counter()
                p = pred.predict(table.cells.take(test))
                predict_s = time.perf_counter() - t0
                row = {"kind": kind, "labels": n, "seed": seed, "test_cells": len(test),
                       "kendall_tau": kendall_tau(y[test], p), "spearman_rho": spearman_rho(y[test], p),
                       "precision_at_100": precision_at_k(y[test], p, 100),
                       "flops_baseline_tau": kendall_tau(y[test], flops[test]),
                       "fit_seconds": round(fit_s, 1), "fit_cpu_seconds": round(fit_cpu, 1),
                       "predict_seconds": round(predict_s, 1)}
                noisy = np.random.default_rng(7)
                for sd in args.score_noise:
                    row[f"kendall_tau_score_noise_{sd}"] = float(np.mean(
                        [kendall_tau(y[test] + noisy.normal(0.0, sd, len(test)), p) for _ in range(5)]))
                if n == 424:  # the "424 -> 100 held-out cells" split
                    held = rest[:100]
                    row["kendall_tau_100_heldout"] = kendall_tau(y[held], pred.predict(table.cells.take(held)))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def drive(strategy, evaluate, key, budget: int) -> list[float]:
    """Ask/tell until `budget` unique cells are evaluated (repeats are answered from memory)."""
    seen: dict[str, Result] = {}
    values = []
    while len(seen) < budget and not strategy.finished():
        genomes = strategy.ask(1)
        if not genomes:
            break
        for g in genomes:
            k = key(g)
            if k not in seen:
                seen[k] = evaluate(g)
                values.append(seen[k].objectives["accuracy"])
            strategy.tell(g, seen[k])
    return values


def part_search(args, table, y) -> list[dict]:
    from searchlab.search_spaces.nasbench101 import spec as nb_spec
    from searchlab.search_spaces.nasbench101.space import NasBench101Space
    from searchlab.evolvers.random_search import RandomSearch
    from searchlab.predictors.guided_search import GuidedSearch

    space = NasBench101Space(table=table.table)
    order = np.sort(y)[::-1]
    top_tenth = order[len(y) // 1000 - 1]  # the accuracy of the 423rd-best cell
    guided = GuidedSearchConfig(initial=args.initial, top_k=args.top_k, rounds=args.rounds, pool=args.pool,
                                shortlist=args.shortlist)
    budget = guided.planned_queries
    evolution = AgingEvolutionConfig(population=args.evolution_population, sample_size=args.evolution_sample)

    def evaluate(g):
        return Result("ok", {"accuracy": float(y[table.table.index_of(nb_spec.spec_hash(g))])})

    renas = (ReNASPredictor, renas_config(args, args.initial))
    gcn = (SemiGCNPredictor, gcn_config(args))
    gt = (GraphTransformerPredictor, gt_config(args))
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.search_seeds):
        strategies = {
            "random": lambda: RandomSearch(space, seed),
            "evolution": lambda: AgingEvolution(space, evolution, seed, {"accuracy": "max"}),
            "renas": lambda: GuidedSearch([renas], guided, seed=seed, table=table),
            "semi-gcn": lambda: GuidedSearch([gcn], guided, seed=seed, table=table, unlabeled=args.unlabeled),
            "graph-transformer": lambda: GuidedSearch([gt], guided, seed=seed, table=table),
            "consensus": lambda: GuidedSearch([renas, gcn], guided, seed=seed, table=table,
                                              unlabeled=args.unlabeled)}
        for name in args.strategies:
            t0 = time.perf_counter()
            values = drive(strategies[name](), evaluate, nb_spec.spec_hash, budget)
            best = max(values)
            rank = int((order > np.float32(best)).sum()) + 1
            label = name if name in ("random", "evolution") or args.rounds == 1 else \
                f"{name} {args.initial}+{args.rounds}x{args.top_k}"
            if name == "evolution" and evolution != AgingEvolutionConfig():
                label = f"evolution P={evolution.population} S={evolution.sample_size}"
            row = {"strategy": label, "seed": seed, "queries": len(values), "best_accuracy": best,
                   "rank": rank, "rank_percentile": 100.0 * rank / len(y),
                   "top_tenth_percent_queries": int((np.asarray(values) >= top_tenth).sum()),
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def part_speed(args, table, y) -> dict:
    from searchlab.predictors.features import vertex_costs
    from searchlab.predictors.table import table_vertex_costs

    out = {}
    times = []
    for _ in range(2):  # the best of two: the first call also pays for first touching the table's pages
        t0 = time.perf_counter()
        vertex_costs(table.cells.adjacency, table.cells.ops)
        times.append(time.perf_counter() - t0)
    out["encode_all_from_scratch_s"] = min(times)
    table_vertex_costs()  # warm the on-disk cache
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(table))
    for kind in args.kinds:
        n_unl = 10000 if kind == "semi-gcn" else 0
        pred = make_predictor(kind, 0, args, 424)
        unl = table.cells.take(rows[424:424 + n_unl]) if n_unl else None
        t0, c0 = time.perf_counter(), time.process_time()
        pred.fit(table.cells.take(rows[:424]), y[rows[:424]], unl)
        out[f"{kind}_fit_424_s"] = time.perf_counter() - t0
        out[f"{kind}_fit_424_cpu_s"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        pred.predict(table.cells)
        out[f"{kind}_predict_all_s"] = time.perf_counter() - t0
        out[f"{kind}_predict_all_cpu_s"] = time.process_time() - c0
        if kind == "graph-transformer":
            out["graph-transformer_pretrain_s"] = pred.meta["pretraining"]["pretrain_seconds"]
            out["graph-transformer_pretrain_cached"] = float(pred.meta["pretraining"]["cached"])
        print(json.dumps({k: round(v, 1) for k, v in out.items()}), flush=True)
    if "renas_predict_all_s" in out:
        out["renas_predict_all_vs_encode_ratio"] = out["renas_predict_all_s"] / out["encode_all_from_scratch_s"]
    return out


def summarise(results: dict) -> None:
    if "kendall" in results:
        print("\nKendall tau (mean +- std over split seeds); baseline = FLOPs column as predictor")
        print(f"{'kind':9s} {'labels':>6s} {'seeds':>5s} {'tau':>14s} {'rho':>6s} {'tau/flops':>9s} {'p@100':>6s}")
        groups: dict = {}
        for r in results["kendall"]:
            groups.setdefault((r["kind"], r["labels"]), []).append(r)
        for (kind, n), rs in groups.items():
            tau = np.array([r["kendall_tau"] for r in rs])
            base = np.mean([r["flops_baseline_tau"] for r in rs])
            print(f"{kind:9s} {n:>6d} {len(rs):>5d} {tau.mean():.3f} +- {tau.std():.3f} "
                  f"{np.mean([r['spearman_rho'] for r in rs]):6.3f} {tau.mean() / base:9.2f} "
                  f"{np.mean([r['precision_at_100'] for r in rs]):6.2f}")
            if n == 424:
                held = [r["kendall_tau_100_heldout"] for r in rs]
                print(f"{'':9s} 424 -> 100 held-out cells: tau {np.mean(held):.3f} +- {np.std(held):.3f}")
        print("published (424 -> all, 4236 -> all): " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in PUBLISHED.items()))
    if "search" in results:
        print("\nSearch: best table accuracy and rank percentile (mean +- std over seeds); ratio vs random")
        groups = {}
        for r in results["search"]:
            groups.setdefault(r["strategy"], []).append(r)
        random = groups.get("random")
        evolution = {r["seed"]: r["best_accuracy"] for r in groups.get("evolution", [])}
        for name, rs in groups.items():
            acc = np.array([r["best_accuracy"] for r in rs])
            pct = np.array([r["rank_percentile"] for r in rs])
            hits = np.mean([r["top_tenth_percent_queries"] for r in rs])
            ratio = "" if random is None else \
                f"rank percentile / random {pct.mean() / np.mean([r['rank_percentile'] for r in random]):.2f}  "
            print(f"{name:10s} seeds {len(rs):2d}  acc {acc.mean():.4f} +- {acc.std():.4f}  top "
                  f"{pct.mean():.3f}% +- {pct.std():.3f}%  {ratio}"
                  f"median rank {np.median([r['rank'] for r in rs]):.0f}  queries in the top 0.1% {hits:.1f}")
            paired = [(r["best_accuracy"], evolution[r["seed"]]) for r in rs if r["seed"] in evolution]
            if paired and not name.startswith("evolution"):
                print(f"{'':10s} against evolution (same seed): better on {sum(a > b for a, b in paired)}, "
                      f"level on {sum(a == b for a, b in paired)} of {len(paired)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", nargs="+", default=["kendall", "search", "speed"], choices=["kendall", "search", "speed"])
    ap.add_argument("--kinds", nargs="+", default=["renas", "semi-gcn"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 172, 424, 4236])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--test-cells", type=int, default=0, help="0 = all remaining cells")
    ap.add_argument("--unlabeled", type=int, default=10000)
    ap.add_argument("--knn", type=int, default=SemiGCNConfig.knn, help="the assessor's relation-graph neighbours")
    ap.add_argument("--gcn-epochs", type=int, default=SemiGCNConfig.gcn_epochs, help="the assessor's training epochs")
    ap.add_argument("--large-epochs", type=int, default=0, help="ReNAS epochs above 1,000 labels (0 = default 200)")
    ap.add_argument("--renas-orders", type=int, default=1, help="ReNAS predictions averaged over this many vertex orders")
    ap.add_argument("--renas-average-from", type=float, default=ReNASConfig.renas_average_from,
                    help="ReNAS weight averaging from this fraction of training (1 = last weights)")
    ap.add_argument("--renas-lr", type=float, default=ReNASConfig.renas_lr, help="ReNAS Adam learning rate")
    ap.add_argument("--renas-dropout", type=float, default=ReNASConfig.renas_dropout, help="ReNAS training dropout")
    ap.add_argument("--gt-ensemble", type=int, default=GraphTransformerConfig.gt_ensemble,
                    help="graph transformer: networks in the ensemble")
    ap.add_argument("--gt-epochs", type=int, default=GraphTransformerConfig.gt_epochs,
                    help="graph transformer: fine-tuning epochs")
    ap.add_argument("--gt-batch", type=int, default=GraphTransformerConfig.gt_batch,
                    help="graph transformer: cells per fine-tuning batch")
    ap.add_argument("--gt-lr", type=float, default=GraphTransformerConfig.gt_lr,
                    help="graph transformer: fine-tuning learning rate")
    ap.add_argument("--gt-encoder-lr-scale", type=float, default=GraphTransformerConfig.gt_encoder_lr_scale,
                    help="graph transformer: the encoder's learning rate over --gt-lr")
    ap.add_argument("--gt-dropout", type=float, default=GraphTransformerConfig.gt_dropout)
    ap.add_argument("--gt-weight-decay", type=float, default=GraphTransformerConfig.gt_weight_decay)
    ap.add_argument("--gt-pretrain-epochs", type=int, default=GraphTransformerConfig.gt_pretrain_epochs,
                    help="label-free pretraining epochs (each value is pretrained once and cached)")
    ap.add_argument("--gt-min-steps", type=int, default=GraphTransformerConfig.gt_min_steps,
                    help="graph transformer: at least this many fine-tuning steps")
    ap.add_argument("--blend-weight", type=float, default=BlendConfig.blend_weight,
                    help="blend: the graph transformer's weight (the assessor's is 1 minus it)")
    ap.add_argument("--large-batch", type=int, default=0, help="ReNAS batch above 1,000 labels (0 = whole set)")
    ap.add_argument("--evolution-population", type=int, default=AgingEvolutionConfig.population,
                    help="regularized evolution baseline: population size P")
    ap.add_argument("--evolution-sample", type=int, default=AgingEvolutionConfig.sample_size,
                    help="regularized evolution baseline: tournament sample size S")
    ap.add_argument("--search-seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0, help="search seeds run from here")
    ap.add_argument("--strategies", nargs="+", default=["random", "evolution", "renas", "semi-gcn"])
    ap.add_argument("--initial", type=int, default=424)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="guided search: fit -> top-k rounds (budget = initial + rounds x top-k)")
    ap.add_argument("--pool", type=int, default=0, help="guided-search candidate pool (0 = all cells)")
    ap.add_argument("--shortlist", type=int, default=GuidedSearchConfig.shortlist,
                    help="guided search: later rounds rank the first fit's N best-predicted cells (0 = the whole pool)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--score-noise", type=float, nargs="*", default=[],
                    help="kendall: also score against the test labels plus Gaussian noise of these standard "
                         "deviations (fractions; 5 draws each, averaged): what run-to-run noise in the scoring "
                         "labels costs the figure")
    ap.add_argument("--label-noise", type=float, default=0.0,
                    help="add seeded Gaussian noise of this standard deviation (accuracy as a fraction) to the "
                         "table's labels, for training and scoring alike: how the results move with label noise")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    table = load_predictor_table()
    y = table.target("test_accuracy")
    if args.label_noise:  # one more training run's worth of noise, the same for every part and strategy
        noise = np.random.default_rng(12345).normal(0.0, args.label_noise, len(y))
        y = np.clip(y + noise, 0.0, 1.0).astype(y.dtype)
    results: dict = {"args": vars(args)}
    if "speed" in args.part:
        results["speed"] = part_speed(args, table, y)
    if "kendall" in args.part:
        results["kendall"] = part_kendall(args, table, y)
    if "search" in args.part:
        results["search"] = part_search(args, table, y)
    summarise(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
