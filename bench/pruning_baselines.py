"""The pruning GA against the simplest alternatives at the same size: L1-norm (magnitude) filter pruning
with Torch-Pruning, and random filters, on LeNet-5 / MNIST or ResNet-20 / CIFAR-10.

Per seed: `searchlab search prune` pretrains LeNet-5, evolves a filter mask (FLOPs as the size measure)
and fine-tunes the pruned network. The baselines start from the same pretrained weights and keep the
same number of filters in every layer, so all three have exactly the GA result's FLOPs. The baselines
differ only in which filters they keep: the largest L1 norms (Torch-Pruning's MagnitudePruner), or
random ones. A fourth network is Torch-Pruning's one-liner: one L1 ratio for every convolution, the
ratio whose FLOPs come nearest the GA's (LeNet-5's 6 and 16 filters cannot always land within 2%). All
are then fine-tuned with the GA's recipe (same images, epochs, optimiser, seed) and scored on the same
held-out test images. With `--max-flops` the GA searches at that size target instead of the lam trade-off.

    pip install torch-pruning      # the optional bench dependency (searchlab[bench])
    python bench/pruning_baselines.py --data mnist:../shared/data/mnist --seeds 0 1 2
    # ResNet-20 at half the FLOPs (the size target), one pretrained network shared by the seeds, the GA
    # scored with and without BatchNorm re-estimation:
    python bench/pruning_baselines.py --model resnet20 --data cifar10:../shared/data/cifar10/cifar10_jpg.tar.gz \
        --train-size 5000 --val-size 500 --pretrain-epochs 6 --population 10 --generations 4 \
        --finetune-epochs 3 --max-flops 0.5 --pretrain-once --bn-images 1024 0 --seeds 0 1 2
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
from searchlab.engine import runner  # noqa: E402
from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier  # noqa: E402

PLUGINS = ["searchlab.evolvers.filter_pruning.plugin"]


def ga_run(args, seed: int, run_dir: Path, weights: str = "", bn_images: int = -1) -> dict:
    space_config = {"model": args.model, "data": args.data, "test_size": args.test_size, "val_size": args.val_size,
                    "train_size": args.train_size, "pretrain_epochs": args.pretrain_epochs, "weights": weights,
                    "size_measure": "flops", "lam": args.lam, "max_flops": args.max_flops, "bn_images": bn_images,
                    "finetune_epochs": args.finetune_epochs, "lr": args.lr, "batch_size": args.batch_size,
                    "layers": args.layers}
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


def l1_uniform(model: torch.nn.Module, layers: list[str], target_flops: float,
               example: torch.Tensor) -> tuple[torch.nn.Module, float]:
    """Torch-Pruning's one-liner: the same L1 ratio in every convolution the GA may prune, the ratio (a
    percentage, 1..95) whose FLOPs come nearest the target, found by bisection (FLOPs fall as the ratio
    grows). Returns the network and its FLOPs."""
    import torch_pruning as tp

    def pruned(percent: int) -> tuple[torch.nn.Module, float]:
        net = copy.deepcopy(model)
        modules = dict(net.named_modules())
        linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        tp.pruner.MagnitudePruner(net, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=0.0, ignored_layers=linear,
                                  pruning_ratio_dict={modules[n]: percent / 100 for n in layers}).step()
        return net, measured_flops(net, example)

    lo, hi = 1, 95
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if pruned(mid)[1] > target_flops else (lo, mid)
    return min((pruned(lo), pruned(hi)), key=lambda nf: abs(nf[1] - target_flops))


def random_pruned(model: torch.nn.Module, plan, kept: dict[str, list[int]], rng: np.random.Generator):
    bits = np.zeros(plan.n_bits, dtype=bool)
    for name, (k, _) in kept.items():
        layer = [b for b in plan.layer_bits[name] if 0 <= b < plan.n_bits]
        if len(layer) < len(plan.layer_bits[name]):  # a layer the GA does not prune
            continue
        bits[rng.choice(layer, size=k, replace=False)] = True
    return prune_model(model, plan, genome_of(bits))


def finetune_and_score(net: torch.nn.Module, train, test, args, seed: int) -> float:
    cfg = TrainConfig.preset("classifier", epochs=args.finetune_epochs, lr=args.lr / 5, batch_size=args.batch_size)
    train_classifier(net, train, cfg, seed=seed, device="cpu")
    return evaluate_classifier(net, test, device="cpu")["accuracy"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lenet5", choices=("lenet5", "resnet20"))
    p.add_argument("--data", default=f"mnist:{ROOT.parent / 'shared' / 'data' / 'mnist'}")
    p.add_argument("--train-size", type=int, default=0, help="training images for (pre)training (0: all)")
    p.add_argument("--max-flops", default="", help="the GA's size target (e.g. 0.5); empty: the lam fitness")
    p.add_argument("--bn-images", type=int, nargs="+", default=[-1],
                   help="GA variants by --bn-images (the first is compared with the baselines)")
    p.add_argument("--pretrain-once", action="store_true",
                   help="pretrain with the first seed and give its weights to every later seed")
    p.add_argument("--out", default="", help="write the rows as JSON here")
    p.add_argument("--layers", nargs="+", default=[],
                   help="convolutions the GA prunes (default: the model's own; resnet20: each block's first "
                        "convolution, the layers Torch-Pruning's L1 can prune at given widths here)")
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
    if args.model == "resnet20" and not args.layers:
        # Torch-Pruning does not follow the zero-padded (option A) shortcuts of the residual streams, so
        # the comparison prunes what both can: each block's first convolution (as Li et al. 2017 do)
        args.layers = [f"layer{stage}.{block}.conv1" for stage in (1, 2, 3) for block in (0, 1, 2)]
    torch.set_num_threads(args.threads)
    rows = []
    start = time.perf_counter()
    weights = ""
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run_dir = Path(tmp) / f"ga-{seed}"
            report = ga_run(args, seed, run_dir, weights, args.bn_images[0])
            weights_file = weights or str(run_dir / "pretrained.safetensors")
            if args.pretrain_once and not weights:
                weights = str(Path(tmp) / "pretrained.safetensors")
                Path(weights).write_bytes(Path(weights_file).read_bytes())
            variants = {}
            for bn in args.bn_images[1:]:
                other = ga_run(args, seed, Path(tmp) / f"ga-{seed}-bn{bn}", weights_file, bn)
                variants[f"ga_bn{bn}"] = other["test_accuracy_after_finetune"]
                variants[f"ga_bn{bn}_flops"] = other["flops_after"]
            kept = report["kept_per_layer"]
            train, _, test, classes = _cached_splits(args.data, 0, args.test_size, args.train_size, args.val_size)
            pretrained = build_classifier(args.model, num_classes=classes, in_channels=int(train.x.shape[1])).eval()
            load_into(pretrained, weights_file, "pretrained weights")
            example = torch.zeros(1, *train.x.shape[1:])
            plan = analyse(pretrained, example)
            l1 = l1_pruned(pretrained, kept, example)
            rand = random_pruned(pretrained, plan, kept, np.random.default_rng(seed))
            uniform, uniform_flops = l1_uniform(pretrained, args.layers or list(kept), report["flops_after"], example)
            flops = {"ga": report["flops_after"], "l1": measured_flops(l1, example), "random": measured_flops(rand, example)}
            assert flops["l1"] == flops["ga"] == flops["random"], flops
            row = {"seed": seed, "flops_before": report["flops_before"], "flops_after": report["flops_after"],
                   "kept": kept, "unpruned": report["test_accuracy_before"],
                   "ga": report["test_accuracy_after_finetune"],
                   "l1": finetune_and_score(l1, train, test, args, seed),
                   "random": finetune_and_score(rand, train, test, args, seed),
                   "l1_uniform": finetune_and_score(uniform, train, test, args, seed),
                   "l1_uniform_flops": uniform_flops, **variants}
            rows.append(row)
            print(f"seed {seed}: FLOPs {row['flops_before'] / 1e3:.0f}K -> {row['flops_after'] / 1e3:.0f}K "
                  f"({row['flops_before'] / row['flops_after']:.2f}x; kept {json.dumps(kept)}); test accuracy "
                  f"unpruned {100 * row['unpruned']:.2f}%, GA {100 * row['ga']:.2f}%, L1 {100 * row['l1']:.2f}%, "
                  f"random {100 * row['random']:.2f}%; L1 uniform {100 * row['l1_uniform']:.2f}% at "
                  f"{uniform_flops / 1e3:.0f}K FLOPs" + "".join(f"; {k} {100 * v:.2f}%" for k, v in variants.items()
                                                                  if not k.endswith("flops")), flush=True)
    print(f"{len(rows)} seeds, {time.perf_counter() - start:.0f} s; test accuracy after fine-tuning, mean (std):")
    names = ["unpruned", "ga", "l1", "random", "l1_uniform"] + [f"ga_bn{bn}" for bn in args.bn_images[1:]]
    for name in names:
        values = [100 * r[name] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {name:9s} {statistics.mean(values):6.2f}% ({spread:.2f})")
    for name in names[2:]:
        above, below = sum(r["ga"] > r[name] for r in rows), sum(r["ga"] < r[name] for r in rows)
        print(f"GA above {name} on {above} of {len(rows)} seeds, below on {below}")
    near = sum(abs(r["l1_uniform_flops"] / r["flops_after"] - 1) <= 0.02 for r in rows)
    print(f"L1 uniform within 2% of the GA's FLOPs on {near} of {len(rows)} seeds")
    if args.max_flops:
        target = float(args.max_flops)
        reached = [r["flops_after"] / r["flops_before"] for r in rows]
        print(f"GA FLOPs / original: {', '.join(f'{x:.4f}' for x in reached)} (target {target:g}; within 2% below "
              f"it on {sum(target * 0.98 <= x <= target for x in reached)} of {len(rows)})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
