"""Real CPU training results of the shared trainer, with the seconds they took.

1. LeNet-5 on the MNIST test set split 8,000 train / 2,000 held out (seeded), a few epochs of SGD.
2. A reduced NAS-Bench-101 network (stem 16, 3 stacks of 1 cell) of the NAS-Bench-101 example cell,
   trained through the `train` evaluator on 10,000 CIFAR-10 training images (a seeded random subset)
   and scored on the official 10,000-image test set.

    python bench/trainer_accuracy.py lenet --mnist ../shared/data/mnist --epochs 5
    python bench/trainer_accuracy.py nb101 --cifar ../shared/data/cifar10/cifar10_jpg.tar.gz --epochs 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from searchlab.training.data import load_classification, split_holdout  # noqa: E402
from searchlab.protocols import Context  # noqa: E402
from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier  # noqa: E402
from searchlab.search_spaces.classifiers import build_classifier  # noqa: E402

# The example cell of the NAS-Bench-101 release (its README): 1x1, 3x3, 3x3 (chained to a 3x3) and a max-pool.
EXAMPLE_CELL = {
    "matrix": [[0, 1, 1, 1, 0, 1, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 0]],
    "ops": ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3",
            "output"],
}


def lenet(args) -> None:
    start = time.perf_counter()
    data = load_classification(f"mnist:{args.mnist}").train
    train, held = split_holdout(data, val_fraction=0.2, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_classifier("lenet5")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    stats = train_classifier(model, train, cfg, seed=0, device=args.device, verbose=True)
    metrics = evaluate_classifier(model, held, device=args.device)
    print(f"LeNet-5, MNIST test set split {len(train)}/{len(held)}, {stats.epochs:g} epochs ({stats.steps} steps, "
          f"batch {args.batch_size}, SGD lr {args.lr} cosine): held-out accuracy {metrics['accuracy']:.4f}, "
          f"training {stats.seconds:.1f} s, total {time.perf_counter() - start:.1f} s")


def nb101(args) -> None:
    from searchlab.search_spaces.nasbench101.space import NasBench101Space, NB101SpaceConfig
    from searchlab.training.train_evaluator import TrainEvaluator, TrainEvaluatorConfig

    start = time.perf_counter()
    space = NasBench101Space(NB101SpaceConfig(stem_channels=args.stem_channels, num_stacks=3, modules_per_stack=1))
    cfg = TrainEvaluatorConfig(data=f"cifar10:{args.cifar}", epochs=args.epochs, train_size=args.train_size,
                               val_fraction=0.0, batch_size=args.batch_size, lr=args.lr)
    evaluator = TrainEvaluator(space, cfg, Context(seed=0, verbose=True))
    loaded = time.perf_counter() - start
    result = evaluator.evaluate(EXAMPLE_CELL, seed=0, device=args.device)
    if not result.ok:
        raise SystemExit(f"training failed: {result.error}")
    o, c = result.objectives, result.cost
    print(f"NAS-Bench-101 example cell, stem {args.stem_channels}, 3 stacks x 1 cell ({o['params']:.0f} params, "
          f"{o['flops'] / 1e6:.1f} M MACs), {len(evaluator.train_set)} CIFAR-10 train images, {c['epochs']:g} "
          f"epochs (batch {args.batch_size}, SGD lr {args.lr} cosine, crop+flip): test accuracy "
          f"{o['accuracy']:.4f} on {len(evaluator.val_set)} images; train+eval {c['seconds']:.1f} s "
          f"(data loading {loaded:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["lenet", "nb101"])
    p.add_argument("--mnist", default=str(SHARED / "mnist"))
    p.add_argument("--cifar", default=str(SHARED / "cifar10" / "cifar10_jpg.tar.gz"))
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--stem-channels", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    defaults = {"lenet": (5, 64, 0.05), "nb101": (4, 128, 0.1)}[args.which]
    args.epochs = args.epochs or defaults[0]
    args.batch_size = args.batch_size or defaults[1]
    args.lr = args.lr or defaults[2]
    (lenet if args.which == "lenet" else nb101)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
