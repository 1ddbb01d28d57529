"""The pruning GA against the simplest alternatives at the same size: L1-norm (magnitude) filter pruning
with Torch-Pruning, and random filters, on LeNet-5 / MNIST.

Per seed: `searchlab search prune` pretrains LeNet-5, evolves a filter mask (FLOPs as the size measure)
and fine-tunes the pruned network. The baselines start from the same pretrained weights and keep the
same number of filters in every layer, so all three have exactly the GA result's FLOPs. The baselines
differ only in which filters they keep: the largest L1 norms (Torch-Pruning's MagnitudePruner), or
random ones. A fourth network is Torch-Pruning's one-liner: one L1 ratio for every convolution, the
ratio whose FLOPs come nearest the GA's (LeNet-5's 6 and 16 filters cannot always land within 2%). All three are then fine-tuned with the GA's recipe (same images, epochs, optimiser, seed)
and scored on the same held-out test images.

    pip install torch-pruning      # the optional bench dependency (searchlab[bench])
    python bench/pruning_baselines.py --data mnist:../shared/data/mnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import copy
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

from searchlab.io import load_into  # noqa: E402
from searchlab.search_spaces.filter_masks.setup import _cached_splits  # noqa: E402
from searchlab.search_spaces.classifiers import build_classifier  # noqa: E402
from searchlab.search_spaces.filter_masks import analyse, genome_of, measured_flops, prune_model  # noqa: E402
from searchlab import runner  # noqa: E402
from searchlab.trainer import TrainConfig, evaluate_classifier, train_classifier  # noqa: E402

PLUGINS = ["searchlab.evolvers.filter_pruning.plugin"]


def ga_run(args, seed: int, run_dir: Path) -> dict:
    space_config = {"model": "lenet5", "data": args.data, "test_size": args.test_size, "val_size": args.val_size,
                    "pretrain_epochs": args.pretrain_epochs, "size_measure": "flops", "lam": args.lam,
                    "finetune_epochs": args.finetune_epochs, "lr": args.lr, "batch_size": args.batch_size}
    runner.create_run(run_dir, space="prune", strategy="prune-ga", evaluator="masked-fitness",
                      space_config=space_config, strategy_config={"population": args.population,
                                                                  "generations": args.generations},
                      evaluator_config={}, seed=seed, budget=runner.Budget(), device="cpu", plugins=PLUGINS)
    runner.run(run_dir, plugins=PLUGINS)
    runner.finalize(run_dir, plugins=PLUGINS)
    return json.loads((run_dir / "pruned" / "report.json").read_text())


def l1_pruned(model: torch.nn.Module, kept: dict[str, list[int]], example: torch.Tensor) -> torch.nn.Module:
    """Torch-Pruning's L1 magnitude pruning of the convolutions to the given filter counts per layer."""
    import torch_pruning as tp

    net = copy.deepcopy(model)
    modules = dict(net.named_modules())
    # Torch-Pruning keeps int(channels * (1 - ratio)): nudge the ratio so the product is not 0.9999...
    ratios = {modules[name]: (total - k) / total - 1e-6 for name, (k, total) in kept.items()}
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    pruner = tp.pruner.MagnitudePruner(net, example, importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=0.0, pruning_ratio_dict=ratios, ignored_layers=linear)
    pruner.step()
    got = {name: modules[name].out_channels for name in kept}
    if got != {name: k for name, (k, _) in kept.items()}:
        raise SystemExit(f"Torch-Pruning kept {got}, wanted {kept}")
    return net


def l1_uniform(model: torch.nn.Module, target_flops: float, example: torch.Tensor) -> tuple[torch.nn.Module, float]:
    """Torch-Pruning's one-liner: the same L1 ratio in every convolution, the ratio (of 1..99%) whose FLOPs come
    nearest the target. Returns the network and its FLOPs."""
    import torch_pruning as tp

    best = None
    for ratio in np.arange(0.01, 1.0, 0.01):
        net = copy.deepcopy(model)
        linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        tp.pruner.MagnitudePruner(net, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=float(ratio), ignored_layers=linear).step()
        flops = measured_flops(net, example)
        if best is None or abs(flops - target_flops) < abs(best[1] - target_flops):
            best = (net, flops)
    return best


def random_pruned(model: torch.nn.Module, plan, kept: dict[str, list[int]], rng: np.random.Generator):
    bits = np.zeros(plan.n_bits, dtype=bool)
    for name, (k, _) in kept.items():
        layer = [b for b in plan.layer_bits[name] if b < plan.n_bits]
        bits[rng.choice(layer, size=k, replace=False)] = True
    return prune_model(model, plan, genome_of(bits))


def finetune_and_score(net: torch.nn.Module, train, test, args, seed: int) -> float:
    cfg = TrainConfig.preset("classifier", epochs=args.finetune_epochs, lr=args.lr / 5, batch_size=args.batch_size)
    train_classifier(net, train, cfg, seed=seed, device="cpu")
    return evaluate_classifier(net, test, device="cpu")["accuracy"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"mnist:{ROOT.parent / 'shared' / 'data' / 'mnist'}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=float, default=5)
    p.add_argument("--finetune-epochs", type=float, default=3)
    p.add_argument("--lam", type=float, default=0.3)
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    try:
        import torch_pruning  # noqa: F401
    except ImportError:
        print("skipped: this bench needs Torch-Pruning (pip install torch-pruning, or searchlab[bench])")
        return 0
    if not Path(args.data.partition(":")[2]).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        return 0
    torch.set_num_threads(args.threads)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run_dir = Path(tmp) / f"ga-{seed}"
            report = ga_run(args, seed, run_dir)
            kept = report["kept_per_layer"]
            train, _, test, _ = _cached_splits(args.data, 0, args.test_size, 0, args.val_size)
            pretrained = build_classifier("lenet5").eval()
            load_into(pretrained, run_dir / "pretrained.safetensors", "pretrained weights")
            example = torch.zeros(1, *train.x.shape[1:])
            plan = analyse(pretrained, example)
            l1 = l1_pruned(pretrained, kept, example)
            rand = random_pruned(pretrained, plan, kept, np.random.default_rng(seed))
            uniform, uniform_flops = l1_uniform(pretrained, report["flops_after"], example)
            flops = {"ga": report["flops_after"], "l1": measured_flops(l1, example), "random": measured_flops(rand, example)}
            assert flops["l1"] == flops["ga"] == flops["random"], flops
            row = {"seed": seed, "flops_before": report["flops_before"], "flops_after": report["flops_after"],
                   "kept": kept, "unpruned": report["test_accuracy_before"],
                   "ga": report["test_accuracy_after_finetune"],
                   "l1": finetune_and_score(l1, train, test, args, seed),
                   "random": finetune_and_score(rand, train, test, args, seed),
                   "l1_uniform": finetune_and_score(uniform, train, test, args, seed),
                   "l1_uniform_flops": uniform_flops}
            rows.append(row)
            print(f"seed {seed}: FLOPs {row['flops_before'] / 1e3:.0f}K -> {row['flops_after'] / 1e3:.0f}K "
                  f"({row['flops_before'] / row['flops_after']:.2f}x; kept {json.dumps(kept)}); test accuracy "
                  f"unpruned {100 * row['unpruned']:.2f}%, GA {100 * row['ga']:.2f}%, L1 {100 * row['l1']:.2f}%, "
                  f"random {100 * row['random']:.2f}%; L1 uniform {100 * row['l1_uniform']:.2f}% at "
                  f"{uniform_flops / 1e3:.0f}K FLOPs", flush=True)
    print(f"{len(rows)} seeds, {time.perf_counter() - start:.0f} s; test accuracy after fine-tuning, mean (std):")
    for name in ("unpruned", "ga", "l1", "random", "l1_uniform"):
        values = [100 * r[name] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {name:9s} {statistics.mean(values):6.2f}% ({spread:.2f})")
    for name in ("l1", "random", "l1_uniform"):
        above, below = sum(r["ga"] > r[name] for r in rows), sum(r["ga"] < r[name] for r in rows)
        print(f"GA above {name} on {above} of {len(rows)} seeds, below on {below}")
    near = sum(abs(r["l1_uniform_flops"] / r["flops_after"] - 1) <= 0.02 for r in rows)
    print(f"L1 uniform within 2% of the GA's FLOPs on {near} of {len(rows)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
