"""Which candidate score predicts a pruned network's accuracy after fine-tuning? ResNet-20 masks at a FLOPs
target, scored three ways: masked accuracy right after pruning, accuracy after re-estimating BatchNorm
statistics (`--bn-images`, the default under a size target), and test accuracy after a short
fine-tuning (the reference). Kendall tau of each score against the reference.

    python bench/pruning_candidate_scores.py --data cifar10:../shared/data/cifar10/cifar10_jpg.tar.gz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.evolvers.filter_pruning.evaluator import recalibrate_batchnorm  # noqa: E402
from searchlab.evolvers.filter_pruning.strategy import PruneGA, PruneGAConfig  # noqa: E402
from searchlab.search_spaces.classifiers import build_classifier  # noqa: E402
from searchlab.search_spaces.filter_masks import analyse, prune_model  # noqa: E402
from searchlab.search_spaces.filter_masks.setup import _cached_splits  # noqa: E402
from searchlab.search_spaces.filter_masks.space import FilterMaskSpace  # noqa: E402
from searchlab.size_target import parse_target  # noqa: E402
from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"cifar10:{ROOT.parent / 'shared' / 'data' / 'cifar10' / 'cifar10_jpg.tar.gz'}")
    p.add_argument("--train-size", type=int, default=5000)
    p.add_argument("--val-size", type=int, default=500)
    p.add_argument("--pretrain-epochs", type=float, default=6)
    p.add_argument("--max-flops", default="0.5")
    p.add_argument("--masks", type=int, default=11)
    p.add_argument("--bn-images", type=int, default=1024)
    p.add_argument("--finetune-epochs", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if not Path(args.data.partition(":")[2]).exists():
        print(f"skipped: {args.data} not found (pass --data)")
        return 0
    torch.set_num_threads(args.threads)
    train, val, test, classes = _cached_splits(args.data, 0, 2000, args.train_size, args.val_size)
    torch.manual_seed(0)
    model = build_classifier("resnet20", num_classes=classes, in_channels=int(train.x.shape[1]))
    start = time.perf_counter()
    train_classifier(model, train, TrainConfig.preset("classifier", epochs=args.pretrain_epochs, lr=0.05), seed=0,
                     device="cpu")
    model.eval()
    print(f"pretrained in {time.perf_counter() - start:.0f} s: test accuracy "
          f"{100 * evaluate_classifier(model, test, device='cpu')['accuracy']:.2f}%", flush=True)
    plan = analyse(model, torch.zeros(1, *train.x.shape[1:]))
    space = FilterMaskSpace(model, plan)
    space.set_target(parse_target(args.max_flops, "flops"))
    masks = PruneGA(space, PruneGAConfig(population=args.masks + 1, generations=1), 0, {"fitness": "max"}).pending[1:]
    rows = []
    for mask in masks:  # random masks, repaired to the target as the GA's first generation is
        net = prune_model(model, plan, mask)
        masked = evaluate_classifier(net, val, device="cpu")["accuracy"]
        recalibrate_batchnorm(net, train, args.bn_images, 128, torch.device("cpu"))
        recalibrated = evaluate_classifier(net, val, device="cpu")["accuracy"]
        train_classifier(net, train, TrainConfig.preset("classifier", epochs=args.finetune_epochs, lr=0.01), seed=0,
                         device="cpu")
        tuned = evaluate_classifier(net, test, device="cpu")["accuracy"]
        rows.append((masked, recalibrated, tuned))
        print(f"FLOPs {space.size(mask) / space.budget.reference:.3f}: masked {100 * masked:.1f}%, BatchNorm "
              f"re-estimated {100 * recalibrated:.1f}%, after fine-tuning {100 * tuned:.2f}%", flush=True)
    r = np.array(rows)
    print(f"Kendall tau against the accuracy after {args.finetune_epochs:g} epoch(s) of fine-tuning, {len(rows)} "
          f"masks: masked {kendalltau(r[:, 0], r[:, 2])[0]:.3f}, BatchNorm re-estimated "
          f"{kendalltau(r[:, 1], r[:, 2])[0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
