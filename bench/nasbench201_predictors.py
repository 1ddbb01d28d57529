"""Kendall tau of the predictors on NAS-Bench-201 at the splits of the predictor papers.

Train on N cells drawn at random from the 15,625 (N = 78, 156, 469, 781, 1563: 0.5 %, 1 %, 3 %, 5 %,
10 %), score the prediction of every cell. As TNASP and PINAT do, the training label and the scoring
label come from independently trained networks and "all" includes the training cells: by default
the fit learns the `cifar10-valid` label (CIFAR-10 test accuracy of networks trained on the 25,000-image
cifar10-valid split) and Kendall tau is taken against the `cifar10` label (networks trained on the full
CIFAR-10 training set; 200 epochs, mean over seeds) over all 15,625 cells. Each split seed draws another
training set and seeds the predictor's training; reported is the mean and standard deviation over
split seeds. The loop runs seed by seed, so a stopped run holds every split at fewer seeds; --json
keeps each figure as it comes and a rerun with the same --json skips those already there.

    python bench/nasbench201_predictors.py [--kinds renas semi-gcn graph-transformer]
        [--labels 78 156 469 781 1563] [--seeds 5] [--train-label cifar10-valid] [--score-label cifar10]
        [--score-on all|held-out] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from searchlab import registry  # noqa: E402
from searchlab.predictors.table import load_predictor_table  # noqa: E402
from searchlab.search_spaces.nasbench201.table import DATASETS  # noqa: E402
from searchlab.engine.seeding import make_rng  # noqa: E402

# Kendall tau on NAS-Bench-201 CIFAR-10 as published (PINAT, AAAI 2023, Table 1; TNASP, NeurIPS 2021, as
# PINAT reports it): trained on one run's validation accuracy, scored on the mean test accuracy of all cells.
PUBLISHED = {"PINAT": {78: .549, 156: .631, 469: .706, 781: .761, 1563: .784},
             "TNASP": {78: .539, 156: .589, 469: .640, 781: .689, 1563: .724}}


def tau_of(kind: str, labels: int, seed: int, unlabeled: int, train_label: str, score_label: str,
           score_on: str) -> tuple[float, float]:
    """Fit `kind` on `labels` random cells' `train_label` (split seed `seed`); Kendall tau against
    `score_label` on all cells or the held-out ones, and the fit's seconds."""
    table = load_predictor_table(space="nasbench201", dataset=train_label)
    y_train = table.target("test_accuracy")
    y_score = load_predictor_table(space="nasbench201", dataset=score_label).target("test_accuracy")
    order = make_rng(seed).permutation(len(table))
    train = np.sort(order[:labels])
    scored = np.arange(len(table)) if score_on == "all" else np.sort(order[labels:])
    cls = registry.predictor(kind).cls
    extra = table.cells.take(order[labels:labels + unlabeled]) if kind == "semi-gcn" and unlabeled else None
    start = time.process_time()
    predictor = cls(seed=seed).fit(table.cells.take(train), y_train[train], extra)
    seconds = time.process_time() - start
    return float(kendalltau(predictor.predict(table.cells.take(scored)), y_score[scored])[0]), seconds


def summary(results: dict, kinds: list[str], labels: list[int]) -> str:
    """The markdown table: each predictor's mean +- std (seeds) per split, the published rows beside."""
    head = "| predictor | " + " | ".join(f"{n:,}" for n in labels) + " |"
    lines = [head, "|---" * (len(labels) + 1) + "|"]
    for kind in kinds:
        cells = []
        for n in labels:
            taus = [r["tau"] for r in results.get(f"{kind}/{n}", {}).values()]
            sd = f" +- {statistics.stdev(taus):.3f}" if len(taus) > 1 else ""
            cells.append(f"{statistics.mean(taus):.3f}{sd} ({len(taus)})" if taus else "-")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for name, row in PUBLISHED.items():
        figures = " | ".join(f"{row[n]:.3f}" if n in row else "-" for n in labels)
        lines.append(f"| {name} (published) | {figures} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", nargs="+", default=["renas", "semi-gcn", "graph-transformer"])
    p.add_argument("--labels", type=int, nargs="+", default=[78, 156, 469, 781, 1563])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--unlabeled", type=int, default=1000, help="unlabelled cells the assessor's graph also holds")
    p.add_argument("--train-label", default="cifar10-valid", choices=list(DATASETS), help="the label fitted")
    p.add_argument("--score-label", default="cifar10", choices=list(DATASETS), help="the label scored against")
    p.add_argument("--score-on", default="all", choices=["all", "held-out"],
                   help="score every cell (the papers' protocol) or only the cells not trained on")
    p.add_argument("--json", help="keep the per-seed figures here (a rerun skips those already there)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (the fits are small: one thread wastes nothing on shared cores)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    registry.load_plugins(["searchlab.predictors.plugin"])
    results: dict = {}
    if args.json and Path(args.json).is_file():
        results = json.loads(Path(args.json).read_text())
    print(f"train on {args.train_label}, Kendall tau against {args.score_label} on {args.score_on} cells")
    for seed in range(args.seeds):
        for labels in args.labels:
            for kind in args.kinds:
                done = results.setdefault(f"{kind}/{labels}", {})
                if str(seed) in done:
                    continue
                tau, seconds = tau_of(kind, labels, seed, args.unlabeled, args.train_label, args.score_label,
                                      args.score_on)
                done[str(seed)] = {"tau": tau, "fit_cpu_seconds": round(seconds, 1)}
                print(f"seed {seed}  {kind:>17} {labels:>5} labels  tau {tau:.3f}  (fit {seconds:.0f} CPU s)",
                      flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=2))
    print(summary(results, args.kinds, args.labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
