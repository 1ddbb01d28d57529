"""The binary channel search's widths against uniform width scaling at the same FLOPs+BOPs/64.

Per seed: the GA searches VGG-Small's per-layer expansion ratios under the hard budget (2x the 1x binary
network's FLOPs+BOPs/64) with the library's `binary-ga` strategy and `binary-train` evaluator, and its
final step trains the best code longer and scores it on the CIFAR-10 test images. The baseline is the
same binary network with one ratio for every layer, the ratio (to 1/1000) whose FLOPs+BOPs/64 is nearest
the searched network's; it is trained by the same evaluator with the same images, epochs, Adam schedule
and seed, and scored on the same test images. The 1x binary network is trained alongside for scale.

    OMP_NUM_THREADS=1 nice -n 10 python bench/binary_baselines.py --seeds 0 1 2 --out binary_baselines.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.engine import runner  # noqa: E402
from searchlab.evolvers.binary_channel_search.evaluator import BinaryTrainConfig, BinaryTrainEvaluator  # noqa: E402
from searchlab.protocols import Context  # noqa: E402
from searchlab.search_spaces.binary_widths import BinarySpaceConfig, BinaryWidthSpace  # noqa: E402
from searchlab.search_spaces.binary_widths.accounting import account_ratios  # noqa: E402

PLUGINS = ["searchlab.evolvers.binary_channel_search.plugin"]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10_jpg.tar.gz"


def uniform_ratio(net: str, target: float, width_scale: float) -> tuple[float, float]:
    """The single ratio (to 1/1000) whose FLOPs+BOPs/64 is nearest `target`, and that cost: the cost grows
    with the ratio, so bisect for the first ratio at or above the target and compare it with the one below."""
    n = len(BinaryWidthSpace(BinarySpaceConfig(net=net)).one_x())

    def cost(milli: int) -> float:
        return account_ratios(net, [milli / 1000] * n, width_scale=width_scale)["flops_bops64"]

    lo, hi = 50, 8000  # 0.05x .. 8x
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if cost(mid) < target else (lo, mid)
    best = min((lo - 1, lo), key=lambda m: abs(cost(m) - target))
    return best / 1000, cost(best)


def one_seed(args, seed: int, run_dir: Path) -> dict:
    space_config = {"net": "vgg-small", "width_scale": args.width_scale}
    eval_config = {"data": args.data, "train_size": args.train_size, "val_size": args.val_size,
                   "epochs_per_candidate": args.epochs, "final_epochs": args.final_epochs,
                   "final_train_size": args.final_train_size}
    runner.create_run(run_dir, space="binary", strategy="binary-ga", evaluator="binary-train",
                      space_config=space_config, strategy_config={"population": args.population,
                                                                  "generations": args.generations,
                                                                  "max_flops": f"{args.max_flops_ratio:g}"},
                      evaluator_config=eval_config, seed=seed, budget=runner.Budget(), device="cpu", plugins=PLUGINS)
    outcome = runner.run(run_dir, plugins=PLUGINS)
    runner.finalize(run_dir, plugins=PLUGINS)
    best = json.loads((run_dir / "final.json").read_text())["models"]["best"]
    space = BinaryWidthSpace(BinarySpaceConfig(net="vgg-small", width_scale=args.width_scale))
    evaluator = BinaryTrainEvaluator(space, BinaryTrainConfig(**eval_config), Context(run_dir=run_dir, seed=seed,
                                                                                      device="cpu"))
    ratio, _ = uniform_ratio("vgg-small", best["flops_bops64"], args.width_scale)
    row = {"seed": seed, "evaluated": outcome.evaluated, "base_cost": space.base_cost(),
           "searched": {k: best[k] for k in ("ratios", "flops_bops64", "cost_ratio", "test_accuracy", "seconds")}}
    for name, ratios in (("uniform", [ratio] * space.length), ("binary_1x", [1.0] * space.length)):
        _, m = evaluator.train(ratios, binary=True, epochs=args.final_epochs, seed=seed, device="cpu",
                               train_size=args.final_train_size or args.train_size, test=True)
        row[name] = {"ratios": ratios, "flops_bops64": m["flops_bops64"],
                     "cost_ratio": m["flops_bops64"] / space.base_cost(), "test_accuracy": m["test_accuracy"],
                     "seconds": m["seconds"]}
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"imagefolder:{CIFAR}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--width-scale", type=float, default=0.125)
    p.add_argument("--population", type=int, default=4)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--val-size", type=int, default=500)
    p.add_argument("--epochs", type=int, default=2, help="epochs per candidate")
    p.add_argument("--final-train-size", type=int, default=2000)
    p.add_argument("--final-epochs", type=int, default=4)
    p.add_argument("--max-flops-ratio", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test): 2 x 1 candidates, 64 images, "
                   "1 epoch")
    p.add_argument("--out", help="write the rows and the summary as JSON here")
    args = p.parse_args()
    if args.quick:
        args.population, args.generations, args.train_size, args.val_size = 2, 1, 64, 32
        args.epochs, args.final_epochs, args.final_train_size = 1, 1, 64
    if not Path(args.data.partition(":")[2]).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        return 0
    torch.set_num_threads(args.threads)
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = one_seed(args, seed, Path(tmp) / f"run-{seed}")
            rows.append(row)
            print(f"seed {seed} ({row['evaluated']} candidates): CIFAR-10 test accuracy", flush=True)
            for name in ("searched", "uniform", "binary_1x"):
                n = row[name]
                print(f"  {name:9s} ratios {json.dumps(n['ratios']):38s} {n['cost_ratio']:.3f}x the 1x cost: "
                      f"{100 * n['test_accuracy']:.2f}%", flush=True)
    wall = time.perf_counter() - start
    result = {"config": vars(args), "wall_s": wall, "rows": rows, "summary": {}}
    print(f"{len(rows)} seeds, {wall:.0f} s; test accuracy mean (std):")
    for name in ("searched", "uniform", "binary_1x"):
        values = [100 * r[name]["test_accuracy"] for r in rows]
        result["summary"][name] = {"mean": statistics.mean(values),
                                   "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        print(f"  {name:9s} {result['summary'][name]['mean']:.2f}% ({result['summary'][name]['std']:.2f})")
    wins = sum(r["searched"]["test_accuracy"] > r["uniform"]["test_accuracy"] for r in rows)
    near = sum(abs(r["uniform"]["flops_bops64"] / r["searched"]["flops_bops64"] - 1) <= 0.02 for r in rows)
    print(f"searched above uniform on {wins} of {len(rows)} seeds; uniform within 2% of the searched cost on "
          f"{near} of {len(rows)}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
