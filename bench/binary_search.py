"""Binary channel search on CIFAR-10: the searched binary network vs the 1x binary and full-precision nets.

All three are trained with the same final budget (epochs, images, optimiser, seed) after the search;
the figure of merit is the share of the 1x-binary -> full-precision accuracy gap that the searched
network closes, and its FLOPs + BOPs/64 relative to the 1x binary network (target: >= 50% at <= 2x).

Example (CPU, a few tens of minutes on 2 cores):
    nice -n 10 python bench/binary_search.py --data imagefolder:../shared/data/cifar10/cifar10_jpg.tar.gz \
        --width-scale 0.125 --population 6 --generations 3 --train-size 3000 --epochs 2 \
        --final-train-size 5000 --final-epochs 6 --run /tmp/binary-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlab import registry  # noqa: E402

from searchlab.engine import runner

PLUGINS = ["searchlab.evolvers.binary_channel_search.plugin"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="imagefolder:../shared/data/cifar10/cifar10_jpg.tar.gz")
    p.add_argument("--net", default="vgg-small")
    p.add_argument("--width-scale", type=float, default=0.125)
    p.add_argument("--population", type=int, default=6)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--train-size", type=int, default=3000)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2, help="epochs per candidate")
    p.add_argument("--final-train-size", type=int, default=5000)
    p.add_argument("--final-epochs", type=int, default=6)
    p.add_argument("--max-flops-ratio", type=float, default=2.0)
    p.add_argument("--lam", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", default="/tmp/binary-bench")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data_path = args.data.split(":", 1)[-1]
    if not Path(data_path).exists():
        print(f"skipped: {data_path} not found (pass --data)")
        return 0
    shutil.rmtree(args.run, ignore_errors=True)
    registry.load_plugins(PLUGINS)
    start = time.time()
    runner.create_run(
        args.run, space="binary", strategy="binary-ga", evaluator="binary-train",
        space_config={"net": args.net, "width_scale": args.width_scale},
        strategy_config={"population": args.population, "generations": args.generations,
                         "max_flops": f"{args.max_flops_ratio:g}", "lam": args.lam},
        evaluator_config={"data": args.data, "train_size": args.train_size, "val_size": args.val_size,
                          "epochs_per_candidate": args.epochs, "final_epochs": args.final_epochs,
                          "final_train_size": args.final_train_size, "compare_baselines": True},
        seed=args.seed, budget=runner.Budget(), device=args.device, plugins=PLUGINS)
    outcome = runner.run(args.run, plugins=PLUGINS)
    search_s = time.time() - start
    summary = runner.finalize(args.run, plugins=PLUGINS)
    total_s = time.time() - start
    models = json.loads((Path(args.run) / "final.json").read_text())["models"]
    print(f"search: {outcome.evaluated} candidates evaluated in {search_s:.0f} s ({outcome.reason}); "
          f"final training of 3 networks: {total_s - search_s:.0f} s")
    print(f"{'network':16s} {'ratios':34s} {'FLOPs+BOPs/64':>14s} {'vs 1x':>6s} {'size MiB':>9s} {'test acc':>8s}")
    for name in ("binary-1x", "best", "full-precision"):
        m = models[name]
        label = "searched binary" if name == "best" else name
        print(f"{label:16s} {json.dumps(m['ratios']):34s} {m['flops_bops64'] / 1e6:13.2f}M {m['cost_ratio']:6.2f} "
              f"{m['size_bits'] / 8 / 2**20:9.3f} {100 * m['test_accuracy']:7.2f}%")
    gap = summary["gap_closed"]
    ratio = models["best"]["cost_ratio"]
    if gap is None:
        print("no gap to close: full precision did not beat the 1x binary network with this budget")
        return 0
    print(f"gap closed: {100 * gap:.1f}% of (full precision - 1x binary) at {ratio:.2f}x the 1x binary FLOPs+BOPs/64; "
          f"target >= 50% at <= 2x: {'met' if gap >= 0.5 and ratio <= 2.0 + 1e-9 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
