"""The SR block search against hand-built chains at the same size: the nearest plain RDN (identical RDB
blocks of G0 channels) and a uniform-width chain (identical RDB blocks of any depth, conv count, growth
and output width of the space) with the parameter count nearest the searched network's.

Per seed: `searchlab search sr` (block credits on, the default) at CPU scale; then the best genome and the
baselines are trained with the evaluator's own final training (same patches, epochs, Adam and cosine
schedule, seed) and scored on Set5 and Set14 (x2, Y channel, shaved), bicubic measured in the same run.

    nice -n 10 python bench/sr_baselines.py --seeds 0 1 2 --out sr_baselines.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import searchlab  # noqa: E402
from searchlab.evolvers.sr_block_search import SRProxyConfig, SRProxyEvaluator  # noqa: E402
from searchlab.search_spaces.sr_blocks import CONVS, GROWTHS, OUTS, SRBlockSpace, load_pairs, score_images  # noqa: E402
from searchlab.search_spaces.sr_blocks import uniform_chain  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sr"


def nearest_chain(space: SRBlockSpace, target: float, outs=OUTS) -> dict:
    """The chain of identical RDB blocks (any depth, convs, growth, output width in `outs`) nearest `target`
    parameters; among equally near ones, the shallowest."""
    best, gap = None, float("inf")
    for n, convs, growth, out in itertools.product(range(1, space.slots + 1), CONVS, GROWTHS, outs):
        genome = uniform_chain("RDB", n, convs=convs, growth=growth, out=out, slots=space.slots)
        d = abs(space.params(genome) - target)
        if d < gap:
            best, gap = genome, d
    return best


def one_seed(args, seed: int, tmp: Path, sets: dict) -> dict:
    run = searchlab.search("sr", run=tmp / f"run-{seed}", seed=seed, device="cpu", finalize=False, scale=2,
                           train=str(args.train), g0=args.g0, params=args.params, max_params=args.max_params,
                           population=args.population,
                           generations=args.generations, epochs_per_candidate=args.epochs, patch=args.patch,
                           batch_size=args.batch_size)
    searched = run.best()["genome"]
    space = SRBlockSpace(scale=2, g0=args.g0, params=f"0:{args.max_params}" if args.max_params else args.params)
    evaluator = SRProxyEvaluator(space, SRProxyConfig(train=str(args.train), patch=args.patch,
                                                      batch_size=args.batch_size))
    target = space.params(searched)
    genomes = {"searched": searched, "rdn": nearest_chain(space, target, outs=(args.g0,)),
               "uniform_chain": nearest_chain(space, target)}
    row = {"seed": seed, "evaluated": len(run.trials()), "networks": {}}
    for name, genome in genomes.items():
        net, stats = evaluator.train(genome, seed=seed, device="cpu", epochs=args.final_epochs, desc=name)
        info = space.describe(genome)
        row["networks"][name] = {"layout": info["layout"], "params": info["params"], "steps": stats.steps,
                                 **{s: score_images(net.cpu(), lr, hr, 2) for s, (lr, hr) in sets.items()}}
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", default=str(DATA / "BSD68"), help="HR training images (the last 4 score candidates)")
    p.add_argument("--set5", default=str(DATA / "Set5"))
    p.add_argument("--set14", default=str(DATA / "Set14"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--g0", type=int, default=16)
    p.add_argument("--params", default="15k:30k", help="the paper's parameter range (without --max-params)")
    p.add_argument("--max-params", default="30k", help="the search's size target (empty: --params instead)")
    p.add_argument("--population", type=int, default=6)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--epochs", type=float, default=1.0, help="proxy epochs per candidate")
    p.add_argument("--final-epochs", type=float, default=20.0)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test): population 3, 1 generation, "
                   "0.1 proxy and final epochs, Set5 only")
    p.add_argument("--out", help="write the rows and the summary as JSON here")
    args = p.parse_args()
    if args.quick:
        args.population, args.generations, args.epochs, args.final_epochs = 3, 1, 0.1, 0.1
    for what in (args.train, args.set5):
        if not Path(what).is_dir():
            print(f"skipped: {what} not found (pass --train / --set5)")
            return 0
    torch.set_num_threads(args.threads)
    folders = {"set5": args.set5} if args.quick or not Path(args.set14).is_dir() else {"set5": args.set5,
                                                                                      "set14": args.set14}
    sets = {name: load_pairs(folder, 2)[1:] for name, folder in folders.items()}
    bicubic = {name: score_images(None, lr, hr, 2) for name, (lr, hr) in sets.items()}
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = one_seed(args, seed, Path(tmp), sets)
            rows.append(row)
            print(f"seed {seed} ({row['evaluated']} candidates):", flush=True)
            for name, n in row["networks"].items():
                scores = ", ".join(f"{s} {n[s]['psnr']:.3f} dB" for s in sets)
                print(f"  {name:14s} {n['params']:>7,} params  {scores}  {n['layout']}", flush=True)
    wall = time.perf_counter() - start
    result = {"config": vars(args), "wall_s": wall, "bicubic": bicubic, "rows": rows, "summary": {}}
    print(f"{len(rows)} seeds, {wall:.0f} s; PSNR mean (std); bicubic "
          + ", ".join(f"{s} {bicubic[s]['psnr']:.3f}" for s in sets))
    for name in rows[0]["networks"]:
        result["summary"][name] = {}
        for s in sets:
            values = [r["networks"][name][s]["psnr"] for r in rows]
            result["summary"][name][s] = {"mean": statistics.mean(values),
                                          "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        print(f"  {name:14s} " + ", ".join(f"{s} {result['summary'][name][s]['mean']:.3f} "
                                           f"({result['summary'][name][s]['std']:.3f})" for s in sets))
    for name in ("rdn", "uniform_chain"):
        wins = sum(r["networks"]["searched"]["set5"]["psnr"] > r["networks"][name]["set5"]["psnr"] for r in rows)
        print(f"searched above {name} on Set5 on {wins} of {len(rows)} seeds")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
