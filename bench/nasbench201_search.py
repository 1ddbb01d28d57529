"""Random search against regularized evolution on NAS-Bench-201 (CIFAR-10 table), over many seeds, at
several budgets: one `searchlab compare` per budget (each budget's runs are their own experiment folder).

    python bench/nasbench201_search.py [--seeds 20] [--budgets 50 100 150] [--out DIR]
        [--strategies random evolution:population=20,sample_size=5] [--baseline random] [--jobs N]

is, for each budget B,

    searchlab compare nasbench201 --strategies random evolution:population=20,sample_size=5 \\
        --seeds 20 --max-evals B --baseline random --out DIR/budget-B

Without --out the runs go to a temporary folder; with it, an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.engine.comparison import compare, markdown_table  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150])
    p.add_argument("--strategies", nargs="+", default=["random", "evolution:population=20,sample_size=5"])
    p.add_argument("--baseline", default="random")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: the CPU cores)")
    p.add_argument("--out", help="experiment folder (default: a temporary one)")
    args = p.parse_args()
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        for budget in args.budgets:
            summary = compare("nasbench201", args.strategies, out=out / f"budget-{budget}", seeds=args.seeds,
                              max_evals=budget, baseline=args.baseline, jobs=args.jobs, plot=bool(args.out))
            print(f"\n{budget} queries, {args.seeds} seeds; table best {100 * summary['table_best']:.2f}%\n")
            print(markdown_table(summary), flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s wall; this process {time.process_time() - cpu:.0f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
