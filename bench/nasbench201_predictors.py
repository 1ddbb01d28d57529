"""Kendall tau of the predictors on NAS-Bench-201 at the splits of the predictor papers.

Train on N cells drawn at random from the 15,625 (N = 78, 156, 469, 781, 1563: 0.5 %, 1 %, 3 %, 5 %,
10 %), test on all the remaining cells, target CIFAR-10 test accuracy (200 epochs, mean over the
benchmark's seeds, the bundled table). Each split seed draws another training set and seeds the
predictor's training; reported is the mean and standard deviation over split seeds.

    python bench/nasbench201_predictors.py [--kinds renas semi-gcn] [--labels 78 156 469 781 1563]
        [--seeds 5] [--json out.json]
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
from scipy.stats import kendalltau  # noqa: E402

from searchlab import registry  # noqa: E402
from searchlab.predictors.table import load_predictor_table  # noqa: E402
from searchlab.engine.seeding import make_rng  # noqa: E402


def tau_of(kind: str, labels: int, seed: int, unlabeled: int) -> float:
    """Fit `kind` on `labels` random cells (split seed `seed`), Kendall tau on all the others."""
    table = load_predictor_table(space="nasbench201")
    y = table.target("test_accuracy")
    order = make_rng(seed).permutation(len(table))
    train, test = np.sort(order[:labels]), np.sort(order[labels:])
    cls = registry.predictor(kind).cls
    extra = table.cells.take(order[labels:labels + unlabeled]) if kind == "semi-gcn" and unlabeled else None
    predictor = cls(seed=seed).fit(table.cells.take(train), y[train], extra)
    return float(kendalltau(predictor.predict(table.cells.take(test)), y[test])[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", nargs="+", default=["renas", "semi-gcn"])
    p.add_argument("--labels", type=int, nargs="+", default=[78, 156, 469, 781, 1563])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--unlabeled", type=int, default=1000, help="unlabelled cells the assessor's graph also holds")
    p.add_argument("--json", help="write the per-seed figures here")
    args = p.parse_args()
    registry.load_plugins(["searchlab.predictors.plugin"])
    results = {}
    print(f"{'kind':>10} {'labels':>6}  tau mean +- std  (per seed)")
    for kind in args.kinds:
        for labels in args.labels:
            start = time.perf_counter()
            taus = [tau_of(kind, labels, seed, args.unlabeled) for seed in range(args.seeds)]
            sd = statistics.stdev(taus) if len(taus) > 1 else 0.0
            results[f"{kind}/{labels}"] = {"taus": taus, "mean": statistics.mean(taus), "std": sd,
                                           "seconds": round(time.perf_counter() - start, 1)}
            print(f"{kind:>10} {labels:>6}  {statistics.mean(taus):.3f} +- {sd:.3f}  "
                  f"({', '.join(f'{t:.3f}' for t in taus)}; {time.perf_counter() - start:.0f} s)", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
