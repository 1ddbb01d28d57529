"""Candidates scored per second: the masked fitness against rebuilding the pruned network per candidate.

Both paths score the same random masks on the same held-out images and return the same numbers
(accuracy, FLOPs, parameters):

- masked, zero mode: zero the input columns of the layers that read removed channels and run the
  original network at full size; FLOPs/params computed analytically from the mask;
- masked, slice mode (what `masked-fitness` uses when the network has no depthwise convolution):
  swap sliced weights into the original modules, so they compute what the pruned network computes;
- rebuilt (the baseline): cut the pruned network out physically (`prune_model`, reusing the
  dependency analysis), run it, count its FLOPs with torch's FlopCounterMode and its parameters;
- reanalysed (a second baseline): the same, but the copy is traced and analysed again per candidate,
  as a library whose dependency graph holds references to one model's modules has to.

Which masks are scored matters to the masked paths, which memoise the first layers per setting of
the few bits they depend on (LeNet-5: conv2 depends on conv1's 6 bits). `--stream ga` (default) scores
the distinct masks a real search asks for, in order: the genetic algorithm with its defaults
(population 32, lam 0.3), its fitness the accuracy on the held-out images of a network pretrained for
`--pretrain-epochs` on the next `--train-images` images; `--stream random` scores uniform random masks.
Images are the real MNIST / CIFAR-10 test images from ../shared/data when present, else the committed
fixtures.

    python bench/pruning_fitness.py [--models lenet5 resnet20] [--val 1000] [--candidates 200]
                                    [--stream ga|random] [--pretrain-epochs 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.search_spaces.classifiers import build_classifier  # noqa: E402
from searchlab.search_spaces.filter_masks import (FilterMaskSpace, MaskedNetwork, analyse, bits_of, cost,  # noqa: E402
                                        measured_flops, prune_model)
from searchlab.training.data import ImageTensors, load_classification  # noqa: E402
from searchlab.training.trainer import TrainConfig, to_float, train_classifier  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DATA = {"lenet5": [f"mnist:{SHARED / 'mnist'}", f"mnist:{ROOT / 'tests' / 'data' / 'mnist_mini'}"],
        "resnet20": [f"cifar10:{SHARED / 'cifar10' / 'cifar10_jpg.tar.gz'}",
                     f"imagefolder:{ROOT / 'tests' / 'data' / 'cifar10_mini'}"]}


def images(model: str):
    for spec in DATA[model]:
        if Path(spec.partition(":")[2]).exists():
            data = load_classification(spec)
            return (data.test if data.test is not None else data.train), spec
    raise SystemExit(f"no data for {model}")


def ga_stream(model, plan, space, x, y, n: int, seed: int = 0) -> list[str]:
    """The first n distinct masks the genetic algorithm asks for, scored as the search scores them."""
    from searchlab.evolvers.filter_pruning.evaluator import _filter_weights
    from searchlab.evolvers.filter_pruning.strategy import PruneGA, PruneGAConfig
    from searchlab.protocols import Result

    masked, sizes, lam = MaskedNetwork(model, plan), _filter_weights(space), 0.3
    ga = PruneGA(space, PruneGAConfig(population=32, generations=1000), seed, {"fitness": "max"})
    seen: dict[str, None] = {}
    while len(seen) < n:
        for g in ga.ask(32):
            acc = accuracy(lambda xb: masked(xb, g), x, y)
            removed = float(sizes[~bits_of(g)].sum() / sizes.sum())
            ga.tell(g, Result("ok", {"fitness": (1 - lam) * acc + lam * removed}))
            seen.setdefault(g)
    return list(seen)[:n]


@torch.no_grad()
def accuracy(forward, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    correct = 0
    for s in range(0, len(x), batch):
        logits = forward(x[s:s + batch])
        correct += int((logits.argmax(1) == y[s:s + batch]).sum())
        F.cross_entropy(logits, y[s:s + batch])
    return correct / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["lenet5", "resnet20"], choices=sorted(DATA))
    ap.add_argument("--val", type=int, default=1000, help="held-out images scored per candidate")
    ap.add_argument("--candidates", type=int, default=200, help="distinct masks per path")
    ap.add_argument("--stream", choices=("ga", "random"), default="ga", help="which masks are scored (see above)")
    ap.add_argument("--pretrain-epochs", type=float, default=1.0, help="pretraining before the GA stream (0: random weights)")
    ap.add_argument("--train-images", type=int, default=8000, help="images to pretrain on (after the held-out ones)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), {args.candidates} distinct {args.stream} masks per path")
    print(f"{'model':>9} {'images':>6} {'bits':>5} {'zero c/s':>11} {'slice c/s':>11} {'rebuilt c/s':>12} "
          f"{'zero/rebuilt':>11} {'slice/rebuilt':>11} {'reanalysed c/s':>14} {'slice/reanal.':>14} {'memo passes':>11}")
    for name in args.models:
        data, spec = images(name)
        x, y = to_float(data.x[:args.val]), data.y[:args.val]
        torch.manual_seed(0)
        model = build_classifier(name).eval()
        example = x[:1]
        plan = analyse(model, example)
        space = FilterMaskSpace(model, plan)
        if args.stream == "ga":
            if args.pretrain_epochs > 0:
                train = ImageTensors(data.x[args.val:args.val + args.train_images],
                                     data.y[args.val:args.val + args.train_images], data.classes)
                train_classifier(model, train, TrainConfig(epochs=args.pretrain_epochs), seed=0, device="cpu")
                model.eval()
            genomes = ga_stream(model, plan, space, x, y, args.candidates)
        else:
            rng = np.random.default_rng(0)
            genomes = [space.sample(rng) for _ in range(args.candidates)]
        zero, sliced = MaskedNetwork(model, plan, mode="zero"), MaskedNetwork(model, plan, mode="slice")

        def score_zero(g):
            return accuracy(lambda xb: zero(xb, g), x, y), cost(model, plan, g)

        def score_sliced(g):
            return accuracy(lambda xb: sliced(xb, g), x, y), cost(model, plan, g)

        def score_rebuilt(g):
            net = prune_model(model, plan, g).eval()
            return accuracy(net, x, y), {"params": float(sum(p.numel() for p in net.parameters())),
                                         "flops": measured_flops(net, example)}

        def score_reanalysed(g):
            # what a library whose dependency graph is bound to module objects must do per candidate
            import copy
            fresh = copy.deepcopy(model)
            net = prune_model(fresh, analyse(fresh, example), g).eval()
            return accuracy(net, x, y), {"params": float(sum(p.numel() for p in net.parameters())),
                                         "flops": measured_flops(net, example)}

        score_zero(genomes[0]), score_sliced(genomes[0]), score_rebuilt(genomes[0])  # warm-up
        zero.to("cpu"), sliced.to("cpu")  # empties their caches: every setting is computed in the timed loop
        paths = (("zero", score_zero), ("slice", score_sliced), ("rebuilt", score_rebuilt),
                 ("reanalysed", score_reanalysed))
        seconds = {label: 0.0 for label, _ in paths}
        results = {label: [] for label, _ in paths}
        for g in genomes:  # the paths take turns, so load from other processes falls on all alike
            for label, fn in paths:
                start = time.perf_counter()
                results[label].append(fn(g))
                seconds[label] += time.perf_counter() - start
        rates = {label: len(genomes) / seconds[label] for label in seconds}
        for mode in ("zero", "slice", "reanalysed"):  # the same answers every way
            for (a1, c1), (a2, c2) in zip(results[mode], results["rebuilt"]):
                assert abs(a1 - a2) <= 2.0 / len(x) and c1["params"] == c2["params"] and abs(c1["flops"] - c2["flops"]) < 1
        print(f"{name:>9} {len(x):>6} {plan.n_bits:>5} {rates['zero']:>11.2f} {rates['slice']:>11.2f} "
              f"{rates['rebuilt']:>12.2f} {rates['zero'] / rates['rebuilt']:>10.2f}x {rates['slice'] / rates['rebuilt']:>10.2f}x"
              f" {rates['reanalysed']:>14.2f} {rates['slice'] / rates['reanalysed']:>13.2f}x {sliced.memo_passes:>11}   ({spec})")


if __name__ == "__main__":
    main()
