"""ESRN block search at CPU scale: credits vs no credits, the searched net vs bicubic and vs hand-designed
RDNs of about the same parameter count trained with the same budget.

Runs two `searchlab search sr` runs (same seed and budget, with and without block credits), then trains
the best genome of each run and the nearest plain RDNs (identical RDB blocks of G0 channels) below and
above the credits run's parameter count for --final-epochs with the same seed, and scores all on Set5 and
Set14 (Y, shaved) against MATLAB-bicubic upscaling measured in the same run.

    nice -n 10 python bench/sr_search.py --out /tmp/srbench                  # CPU scale
    nice -n 10 python bench/sr_search.py --out /tmp/srbench --reuse --final-epochs 60   # same searches, longer
    python bench/sr_search.py --gpu --out runs/srbench-gpu                   # paper-sized, when a GPU is there
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sr"


def start_search(out: Path, name: str, args: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen, float]:
    cmd = [sys.executable, "-m", "searchlab.cli", "search", "sr", "--scale", "2", "--train", str(DATA / "BSD68"),
           "--g0", str(args.g0), "--params", args.params, "--population", str(args.population),
           "--generations", str(args.generations), "--epochs-per-candidate", str(args.epochs),
           "--patch", str(args.patch), "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--run", str(out / name), "--no-finalize",
           "--quiet", "--json", *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env), time.perf_counter()


def finish_search(name: str, job: tuple[subprocess.Popen, float]) -> dict:
    proc, start = job
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {stderr.strip()[-2000:]}")
    outcome = json.loads(stdout)
    outcome["wall_seconds"] = time.perf_counter() - start
    return outcome


def rdn_nearest(space, target: float):
    """The largest plain RDN (identical RDB blocks of G0 channels) with at most `target` parameters and
    the smallest with more (None where there is none)."""
    from searchlab.search_spaces.sr_blocks import CONVS, GROWTHS, uniform_chain

    below, above = (None, -1), (None, float("inf"))
    for n in range(1, space.slots + 1):
        for convs in CONVS:
            for growth in GROWTHS:
                genome = uniform_chain("RDB", n, convs=convs, growth=growth, out=space.g0, slots=space.slots)
                p = space.params(genome)
                if below[1] < p <= target:
                    below = (genome, p)
                if target < p < above[1]:
                    above = (genome, p)
    return below[0], above[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/srbench")
    p.add_argument("--g0", type=int, default=16)
    p.add_argument("--params", default="15k:30k")
    p.add_argument("--population", type=int, default=6)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--epochs", type=float, default=1.0, help="proxy epochs per candidate")
    p.add_argument("--final-epochs", type=float, default=15.0)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reuse", action="store_true", help="keep the searches already in --out; redo the final trainings")
    p.add_argument("--baselines-only", action="store_true",
                   help="with --reuse: train only the RDN baselines, taking the searched rows from the last report")
    p.add_argument("--gpu", action="store_true", help="paper-sized: g0 32, 300k:330k, longer training")
    args = p.parse_args()
    if args.gpu:
        args.g0, args.params, args.patch, args.batch_size = 32, "300k:330k", 48, 16
        args.population, args.generations, args.epochs, args.final_epochs = 8, 10, 5.0, 200.0
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing; this benchmark needs the shared SR data")

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from searchlab.evolvers.sr_block_search import SRProxyConfig, SRProxyEvaluator
    from searchlab.search_spaces.sr_blocks import load_pairs, score_images
    from searchlab.search_spaces.sr_blocks import SRBlockSpace
    from searchlab.store.run_store import RunStore
    from searchlab.engine.runner import best_trial

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the two searches run side by side (one thread each), same seed and budget
    if args.reuse and all((out / n / "run.sqlite").exists() for n in ("credits", "no_credits")):
        runs = {n: json.loads((out / "report.json").read_text())[n]["search"] for n in ("credits", "no_credits")}
    else:
        jobs = {"credits": start_search(out, "credits", args, []),
                "no_credits": start_search(out, "no_credits", args, ["--no-credits"])}
        runs = {name: finish_search(name, job) for name, job in jobs.items()}

    space = SRBlockSpace(scale=2, g0=args.g0, params=args.params)
    evaluator = SRProxyEvaluator(space, SRProxyConfig(train=str(DATA / "BSD68"), patch=args.patch,
                                                      batch_size=args.batch_size))
    device = "auto"
    sets = {name: load_pairs(str(DATA / folder), 2)[1:] for name, folder in (("set5", "Set5"), ("set14", "Set14"))}
    report: dict = {"args": vars(args), "bicubic": {n: score_images(None, lr, hr, 2) for n, (lr, hr) in sets.items()}}

    def final(genome: dict, label: str) -> dict:
        net, stats = evaluator.train(genome, seed=args.seed, device=device, epochs=args.final_epochs, desc=label)
        info = space.describe(genome)
        row = {"layout": info["layout"], "params": info["params"], "mult_adds_G": info["mult_adds"] / 1e9,
               "train_seconds": stats.seconds, "steps": stats.steps}
        for name, (lr, hr) in sets.items():
            row[name] = score_images(net.cpu(), lr, hr, 2)
        print(json.dumps({label: row}), flush=True)
        return row

    for name in runs:
        if args.baselines_only:
            report[name] = json.loads((out / f"report-final{args.final_epochs:g}.json").read_text())[name]
            continue
        store = RunStore.open(out / name)
        trials = store.trials()
        config = store.config
        best = best_trial(trials, config["objectives"])
        strategy_state = store.last_snapshot().state
        store.close()
        report[name] = {"search": runs[name], "evaluated": runs[name].get("evaluated"),
                        "search_seconds": runs[name]["wall_seconds"],
                        "best_proxy_psnr": best.result.objectives["psnr"],
                        "proxy_psnr_per_generation": [h.get("best", h.get("best_psnr")) for h in strategy_state["history"]],
                        "type_credit": strategy_state["type_credit"],
                        "final": final(best.genome, name)}
    # plain RDNs come in coarse steps of size: train the nearest one on each side of the searched size
    below, above = rdn_nearest(space, report["credits"]["final"]["params"])
    for label, genome in (("rdn_below", below), ("rdn_above", above)):
        if genome is not None:
            report[label] = final(genome, label)

    b5 = report["bicubic"]["set5"]["psnr"]
    print("\n== Set5 x2 PSNR (dB), gain over bicubic measured in the same run ==")
    print(f"bicubic            {b5:.3f}")
    rows = [("searched (credits)", report["credits"]["final"]), ("searched (no cred)", report["no_credits"]["final"])]
    rows += [(f"RDN {side}", report[f"rdn_{side}"]) for side in ("below", "above") if f"rdn_{side}" in report]
    for label, row in rows:
        print(f"{label:18s} {row['set5']['psnr']:.3f}  (+{row['set5']['psnr'] - b5:.3f} dB, "
              f"MSE ratio to bicubic {10 ** (-(row['set5']['psnr'] - b5) / 10):.3f}), params {row['params']}, "
              f"Set14 {row['set14']['psnr']:.3f}")
    for name in ("credits", "no_credits"):
        r = report[name]
        print(f"{name:10s} best proxy PSNR per generation: {np.round(r['proxy_psnr_per_generation'], 3).tolist()}")
    name = "report.json" if not args.reuse else f"report-final{args.final_epochs:g}.json"
    if args.baselines_only:
        name = f"report-final{args.final_epochs:g}-baselines.json"
    (out / name).write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwritten {out / name}")


if __name__ == "__main__":
    main()
