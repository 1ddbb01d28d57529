"""The CycleGAN co-evolution's masks against uniform channel scaling at the same parameter count.

Per seed: `searchlab search cyclegan` (fidelity fitness, no discriminator) evolves a channel mask of the
trained generator. The baselines keep the same fraction of channels in each of the five width segments
(ngf, 2ngf, 4ngf, 2ngf, ngf), the fraction whose parameter count is nearest the searched mask's:
- uniform L1: in each segment the channels whose filters have the largest L1 norm (summed over the
  convolutions writing into the segment), the magnitude rule of filter pruning;
- uniform random: random channels (seeded).
Each network is cut out of the same trained weights, then all are fine-tuned with the same steps, crops,
optimiser and seed (the library's `finetune`, L1 to the full generator's output on the trainA images),
and scored by output PSNR against the full generator on the images neither search nor fine-tuning saw
(testA, trainB, testB) at their full size. Only one trained generator (horse -> zebra) is available, so
only that side is searched and scaled.

    nice -n 10 python bench/cyclegan_baselines.py --seeds 0 1 2 --out cyclegan_baselines.json
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

import searchlab  # noqa: E402
from searchlab.evolvers.gan_coevolution.finetune import finetune  # noqa: E402
from searchlab.search_spaces import cyclegan as cg  # noqa: E402

VINTAGE = ROOT.parent / "shared" / "data" / "cyclegan" / "vintage_G_A2B.pth"
SAMPLE = ROOT.parent / "shared" / "data" / "unpaired" / "horse2zebra_mini"
HELD_OUT = ("testA", "trainB", "testB")


def channel_norms(gen: cg.ResnetGenerator) -> list[np.ndarray]:
    """Per segment, the L1 norm of each output channel's filters, summed over the convs writing into it."""
    norms = [np.zeros(w) for w in gen.widths]
    for conv, seg in zip(gen.convs(), gen.layer_segments()):
        w = conv.weight.detach().abs()
        per_out = w.sum(dim=(0, 2, 3)) if isinstance(conv, torch.nn.ConvTranspose2d) else w.sum(dim=(1, 2, 3))
        norms[seg] += per_out.numpy()
    return norms


def uniform_mask(gen: cg.ResnetGenerator, keep: float, order: list[np.ndarray]) -> str:
    """Keep round(keep * width) channels of every segment, the first ones of each segment's `order`."""
    bits = []
    for width, rank in zip(gen.widths, order):
        seg = np.zeros(width, dtype=bool)
        seg[rank[:max(1, round(keep * width))]] = True
        bits.append(seg)
    return "".join("1" if b else "0" for b in np.concatenate(bits))


def uniform_at(gen: cg.ResnetGenerator, target: int, order: list[np.ndarray]) -> tuple[str, float]:
    """The uniform mask whose parameter count is nearest `target` (fractions in steps of 1/1000)."""
    masks = [uniform_mask(gen, k, order) for k in np.arange(0.001, 1.0005, 0.001)]
    best = min(masks, key=lambda m: abs(cg.mask_params(np.frombuffer(m.encode(), np.uint8) == 49, gen) - target))
    return best, best.count("1") / len(best)


def params_of(mask: str, gen: cg.ResnetGenerator) -> int:
    return cg.mask_params(np.frombuffer(mask.encode(), np.uint8) == ord("1"), gen)


def one_seed(args, seed: int, tmp: Path) -> dict:
    run = searchlab.search("cyclegan", run=tmp / f"run-{seed}", seed=seed, device="cpu", checkpoints=args.checkpoint,
                           data=args.data, crop=args.crop, init_keep=args.init_keep,
                           max_params=args.max_params, population=args.population,
                           generations=args.generations, finetune_steps=0, fitness="fidelity")
    searched = json.loads((Path(run.path) / "cyclegan" / "masks.json").read_text())["A"]
    space = cg.CycleganSpace.from_config(cg.CycleganConfig(checkpoints=args.checkpoint, data=args.data, crop=args.crop))
    full = space.generators["A"].eval()
    held = torch.cat([cg.read_unpaired(args.data)[name] for name in HELD_OUT if True])
    target = params_of(searched, full)
    rng = np.random.default_rng(seed)
    l1_order = [np.argsort(-n, kind="stable") for n in channel_norms(full)]
    rand_order = [rng.permutation(w) for w in full.widths]
    masks = {"searched": (searched, searched.count("1") / len(searched))}
    masks["uniform_l1"] = uniform_at(full, target, l1_order)
    masks["uniform_random"] = uniform_at(full, target, rand_order)
    row = {"seed": seed, "full_params": cg.count_params(full), "networks": {}}
    for name, (mask, kept) in masks.items():
        small = cg.prune(full, mask)
        before = cg.compare_outputs(full, small, held)
        if args.finetune_steps:
            finetune(space, {"A": small}, steps=args.finetune_steps, seed=seed, device="cpu")
        after = cg.compare_outputs(full, small, held)
        row["networks"][name] = {"params": cg.count_params(small), "widths": list(small.widths), "kept_bits": kept,
                                 "psnr_before": before["psnr"], "psnr_after": after["psnr"],
                                 "psnr_per_image_after": after["psnr_per_image"]}
    return row


def summary(rows: list[dict], key: str) -> dict:
    out = {}
    for name in rows[0]["networks"]:
        values = [r["networks"][name][key] for r in rows]
        out[name] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(VINTAGE), help="the trained generator (.pth) or checkpoint folder")
    p.add_argument("--data", default=str(SAMPLE), help="CycleGAN folder with trainA/ trainB/ testA/ testB/")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--crop", type=int, default=64, help="crop of the search's fitness images and fine-tuning")
    p.add_argument("--init-keep", type=float, default=0.8)
    p.add_argument("--max-params", default="0.5", help="the search's size target per generator (0.5: half)")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--finetune-steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test): population 2, 1 generation, "
                   "crop 32, 2 fine-tuning steps")
    p.add_argument("--out", help="write the rows and the summary as JSON here")
    args = p.parse_args()
    if args.quick:
        args.population, args.generations, args.crop, args.finetune_steps = 2, 1, 32, 2
    for what in (args.checkpoint, args.data):
        if not Path(what).exists():
            print(f"skipped: {what} not found (pass --checkpoint / --data)")
            return 0
    torch.set_num_threads(args.threads)
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = one_seed(args, seed, Path(tmp))
            rows.append(row)
            print(f"seed {seed}: output PSNR vs the full generator on {', '.join(HELD_OUT)} "
                  f"(before / after {args.finetune_steps} fine-tuning steps):", flush=True)
            for name, n in row["networks"].items():
                print(f"  {name:15s} {n['params']:>10,} params ({row['full_params'] / n['params']:.2f}x fewer), widths "
                      f"{n['widths']}: {n['psnr_before']:.2f} / {n['psnr_after']:.2f} dB", flush=True)
    wall = time.perf_counter() - start
    result = {"config": vars(args), "wall_s": wall, "rows": rows,
              "before": summary(rows, "psnr_before"), "after": summary(rows, "psnr_after")}
    print(f"{len(rows)} seeds, {wall:.0f} s; PSNR mean (std), before / after fine-tuning:")
    for name in rows[0]["networks"]:
        b, a = result["before"][name], result["after"][name]
        print(f"  {name:15s} {b['mean']:.2f} ({b['std']:.2f}) / {a['mean']:.2f} ({a['std']:.2f}) dB")
    for name in ("uniform_l1", "uniform_random"):
        wins = sum(r["networks"]["searched"]["psnr_after"] > r["networks"][name]["psnr_after"] for r in rows)
        print(f"searched above {name} after fine-tuning on {wins} of {len(rows)} seeds")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
