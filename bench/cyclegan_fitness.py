"""Fitness evaluations per second: masking the full CycleGAN generator vs rebuilding it physically pruned.

Scores random masks of a full-size generator (the trained one in ../shared/data when present, else a
randomly initialised ngf 64 / 9-block one: speed does not depend on the weights) with the fallback
fitness on centre crops of the horse2zebra fixture. The baseline is the masked forward (full-size
convs with zeroed channels), measured in the same run.

    python bench/cyclegan_fitness.py [--crop 64] [--evals 6] [--keep 0.5 0.8] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.evolvers.gan_coevolution import GanFitness, GanFitnessConfig  # noqa: E402
from searchlab.search_spaces import cyclegan as cg  # noqa: E402

VINTAGE = ROOT.parent / "shared" / "data" / "cyclegan" / "vintage_G_A2B.pth"
MINI = ROOT / "tests" / "data" / "horse2zebra_mini"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crop", type=int, default=64, help="image size scored (the fixture is 64x64)")
    ap.add_argument("--evals", type=int, default=6, help="fitness evaluations per mode and keep ratio")
    ap.add_argument("--keep", type=float, nargs="+", default=[0.5, 0.8], help="fraction of bits kept")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if VINTAGE.is_file():
        gen, source = cg.load_generator(VINTAGE), f"trained generator {VINTAGE.name}"
    else:
        torch.manual_seed(0)
        gen, source = cg.ResnetGenerator([64, 128, 256, 128, 64], 9, affine=True).eval(), "random-init generator"
    images = cg.read_unpaired(MINI, crop=args.crop)
    space = cg.CycleganSpace({"A": gen}, {}, images)
    print(f"{source}: {cg.count_params(gen):,} params; {len(images['trainA'])} images of {args.crop}x{args.crop}; "
          f"{args.threads} thread(s); {args.evals} evaluations per row")
    print("eval/s per wall second and per CPU second of this process (the CPU figure is steadier on a shared machine)")
    print(f"{'keep':>5} {'param ratio':>11} {'masked wall':>12} {'rebuilt wall':>13} {'speed-up':>9} "
          f"{'masked CPU':>11} {'rebuilt CPU':>12} {'speed-up':>9}")
    for keep in args.keep:
        rng = np.random.default_rng(0)
        space.init_keep = keep
        genomes = [{"side": "A", "mask": space.random_mask("A", rng), "partner": None} for _ in range(args.evals)]
        ratio = np.mean([space.describe(g)["param_ratio"] for g in genomes])
        rates, cpu_rates, scores = {}, {}, {}
        for mode in ("mask", "rebuild"):
            ev = GanFitness(space, GanFitnessConfig(fitness="fidelity", apply=mode), val_images=8)
            ev.evaluate(genomes[0], seed=0, device="cpu")  # reference outputs are cached once per run
            start, cpu = time.perf_counter(), time.process_time()
            scores[mode] = [ev.evaluate(g, seed=0, device="cpu").objectives["fitness"] for g in genomes]
            rates[mode] = args.evals / (time.perf_counter() - start)
            cpu_rates[mode] = args.evals / (time.process_time() - cpu)
        assert np.allclose(scores["mask"], scores["rebuild"], rtol=1e-3), "masked and rebuilt fitness differ"
        print(f"{keep:5.2f} {ratio:10.2f}x {rates['mask']:12.2f} {rates['rebuild']:13.2f} "
              f"{rates['rebuild'] / rates['mask']:8.2f}x {cpu_rates['mask']:11.2f} {cpu_rates['rebuild']:12.2f} "
              f"{cpu_rates['rebuild'] / cpu_rates['mask']:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
