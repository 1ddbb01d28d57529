"""Random search against regularized evolution on NAS-Bench-201 (CIFAR-10, CIFAR-100 or ImageNet16-120), over many seeds.

Each run queries the bundled table through the engine (a cell equivalent to one already queried is
answered from the run and not counted). Reported per budget and strategy: the median and mean test
accuracy of the best cell found, its median rank among the 15,625 cells, and how many seeds found a
cell of the best accuracy.

    python bench/nasbench201_search.py [--seeds 20] [--budgets 50 100 150] [--population 20 --sample-size 5]
        [--strategies random evolution renas graph-transformer] [--initial 50 --top-k 10]
        [--datasets cifar10 cifar100 imagenet16-120]

The guided strategies (renas, semi-gcn, consensus, graph-transformer) query --initial random cells, then
refit and query their --top-k best predicted cells until the budget is spent ((budget - initial) / top-k
rounds). Every strategy of a budget runs the same seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from searchlab.search_spaces.nasbench201.table import DATASETS, load_table  # noqa: E402
from searchlab import runner  # noqa: E402


def best_of(strategy: str, budget: int, seed: int, strategy_config: dict, work: Path, dataset: str) -> float:
    run = work / f"{dataset}-{strategy}-{budget}-{seed}"
    runner.create_run(run, space="nasbench201", strategy=strategy, evaluator="nb201-table", space_config={},
                      strategy_config=strategy_config, evaluator_config={"dataset": dataset}, seed=seed,
                      budget=runner.Budget(max_evals=budget))
    return runner.run(run).best["result"]["objectives"]["accuracy"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150])
    p.add_argument("--population", type=int, default=20, help="evolution's population P")
    p.add_argument("--sample-size", type=int, default=5, help="evolution's tournament size S")
    p.add_argument("--strategies", nargs="+", default=["random", "evolution"])
    p.add_argument("--initial", type=int, default=50, help="guided search: random cells before the first fit")
    p.add_argument("--top-k", type=int, default=10, help="guided search: predicted-best cells per round")
    p.add_argument("--renas-epochs", type=int, default=100, help="guided search: ReNAS training epochs")
    p.add_argument("--datasets", nargs="+", default=["cifar10"], choices=list(DATASETS),
                   help="whose test accuracy the searches maximise, one table each")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the guided strategies' fits")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for dataset in args.datasets:
        search_table(args, dataset)
    print(f"({time.perf_counter() - start:.0f} s wall, {time.process_time():.0f} CPU s)")
    return 0


def search_table(args, dataset: str) -> None:
    """One data set: every budget x strategy over the seeds, one printed row each."""
    table = load_table(dataset=dataset)
    top = float(table.test_accuracy.max())
    configs = {"random": {}, "evolution": {"population": args.population, "sample_size": args.sample_size}}
    configs = {name: configs.get(name) for name in args.strategies}
    print(f"NAS-Bench-201 {dataset}, {args.seeds} seeds; evolution P={args.population} S={args.sample_size}; "
          f"table best {100 * top:.2f}%")
    print(f"{'budget':>6} {'strategy':>17} {'median acc':>10} {'mean acc':>9} {'median rank':>11} {'found best':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for budget in args.budgets:
            for name, cfg in configs.items():
                if cfg is None:  # a guided strategy: the budget after the random start, in rounds of top-k
                    cfg = {"initial": args.initial, "top_k": args.top_k, "rounds": (budget - args.initial) // args.top_k}
                    if name in ("renas", "consensus"):
                        cfg["renas_epochs"] = args.renas_epochs
                accs = [best_of(name, budget, seed, cfg, Path(tmp), dataset) for seed in range(args.seeds)]
                ranks = [int(table.ranks[int((table.test_accuracy == table.test_accuracy.dtype.type(a)).argmax())])
                         for a in accs]
                found = sum(a >= top - 1e-7 for a in accs)
                print(f"{budget:>6} {name:>17} {100 * statistics.median(accs):>9.2f}% {100 * statistics.mean(accs):>8.2f}% "
                      f"{statistics.median(ranks):>11g} {found:>5} / {args.seeds}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
