"""The GPU check: searchlab's GPU verdicts measured by one command, each part under its own time cap.

Parts, most important verdict first (a part that fails prints its error and the next part runs):

  trainer         the CUDA graph step checked first: the same capturable step replayed and run eagerly
                  from the same weights and batches must give the same loss and weights (cuDNN
                  deterministic), else the part stops before timing. Then the trainer against a plain
                  fp32 loop over the uint8 images kept on the device, with the same on-device crop+flip
                  (ResNet-20, batch 128, the loops taking turns, best of 2), and with CUDA graphs off.
  resnet20        ResNet-20 trained on the 50,000 training images by the fast recipe (gpu_resnets.py)
                  for as many epochs as fit the cap; test accuracy on the 10,000 test images against
                  91.2%; weights written to the output folder (resnet20.safetensors).
  prune_resnet20  the pruning GA at half the FLOPs (max_flops 0.5) on those weights against Torch-Pruning's
                  L1 pruner at the same filters per layer (and one L1 ratio for all layers), the same
                  fine-tuning for each; Vega Prune-EA's row beside them.
  resnet56        as resnet20, against 93.0% (resnet56.safetensors).
  prune_resnet56  as prune_resnet20; Torch-Pruning's published ResNet-56 row beside them.
  binary, sr, cyclegan, gpu_tests   searches at the papers' scale and the tests marked `gpu` (measured
                  before; not in the default list, `--parts` runs them).

Every figure is printed as one line and all are written to OUT/figures.json after each part, so a run
cut short still leaves what it measured. A part whose cap would pass --deadline (seconds from the
start) gets what is left, or is skipped under 20 s.

Prepared in the repository root (not committed: .gpucheck/ and .whl/ are ignored):

    make gpu-check-kit     # .gpucheck/cifar10_jpg.tar.gz from ../shared/data; .whl/: deap, torch-pruning
                           # and searchlab itself (its plug-ins are found through its entry points)

then the one command on the device (one NVIDIA H100 or H200; torch 2.11 is there; about 5.5 minutes;
timeout 420 s leaves device time for one rerun), carrying [".gpucheck", ".whl"]:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --data .gpucheck --out $OUT 2>&1 | tee $OUT/log.txt

A rerun of some parts: add `--parts prune_resnet20 resnet56`; weights kept from the first run (copied
into .gpucheck/) are used by the prune parts when their training part is not run.

    python bench/gpu_check.py --smoke --out DIR    # every part at tiny sizes on CPU, from tests/data

--data DIR holds cifar10_jpg.tar.gz (and for binary/sr/cyclegan BSD68/ and horse2zebra_mini/); each is
looked up under DIR, then under DIR's shared-data subfolders.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from gpu_common import ROOT, SHARED, Check, build, cifar, cifar_spec, find, run_search, trainer_rate
from gpu_resnets import part_prune, part_resnet

# Seconds each part may take on the GPU; the default parts and data decoding fit in about 5.5 minutes.
CAPS = {"trainer": 30, "resnet20": 90, "prune_resnet20": 60, "resnet56": 65, "prune_resnet56": 50,
        "binary": 45, "sr": 40, "cyclegan": 25, "gpu_tests": 40}
DEFAULT_PARTS = ["trainer", "resnet20", "prune_resnet20", "resnet56", "prune_resnet56"]
SMOKE_CAPS = {name: 600 for name in CAPS}  # a guard against hangs: a shared CPU can be slow
GRACE = 20  # seconds past a part's cap before it is interrupted


class PartTimeout(Exception):
    """A part ran past its cap plus the grace period."""


# --------------------------------------------------------------------------------------------------
# 1. the CUDA graph step, then the trainer against a plain loop
# --------------------------------------------------------------------------------------------------

def verify_graph(check: Check) -> None:
    """The capturable step replayed (cuda_graph auto) and run eagerly (eager) from the same weights and
    batches: the same loss and weights, or an error (the timings would not count)."""
    from searchlab.training.trainer import TrainConfig, train_classifier

    train, _ = cifar(check)
    batch = 4 if check.smoke else 128
    n = (2 if check.smoke else 8) * batch
    small = train.subset(list(range(0, len(train), max(1, len(train) // n)))[:n])  # every class
    cfg = TrainConfig(epochs=2, batch_size=batch, augment="crop_flip")
    runs = {}
    deterministic = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        for mode in ("auto", "eager"):
            model = build("resnet20")
            stats = train_classifier(model, small, replace(cfg, cuda_graph=mode), seed=0, device=check.device)
            runs[mode] = (stats, [p.detach().float().cpu() for p in model.parameters()])
    finally:
        torch.backends.cudnn.deterministic = deterministic
    (graph, graph_weights), (eager, eager_weights) = runs["auto"], runs["eager"]
    diff = max(float((a - b).abs().max()) for a, b in zip(graph_weights, eager_weights))
    same = diff == 0 and graph.final_loss == eager.final_loss
    check.figure("trainer", "training step", graph.cuda_graph, "", f"{graph.steps} steps of {batch}")
    check.figure("trainer", "graph vs eager, last-epoch loss", f"{graph.final_loss:.6f} vs {eager.final_loss:.6f}",
                 "", "bitwise equal, weights too" if same else f"largest weight difference {diff:.2e}")
    if check.device.type == "cuda" and not graph.cuda_graph.startswith("captured"):
        raise RuntimeError(f"the training step was not captured: {graph.cuda_graph}")
    if abs(graph.final_loss - eager.final_loss) > 1e-3 * abs(eager.final_loss) or diff > 1e-3:
        raise RuntimeError("the captured step trains differently from the same step run eagerly")


# Trainer settings timed against the plain loop: the defaults (CUDA graph where it can) and graphs off.
VARIANTS = {"searchlab trainer (CUDA graph, bf16 autocast, channels-last: the defaults)": {},
            "trainer, CUDA graphs off": {"cuda_graph": "off"}}


def plain_device_loop(model, x: torch.Tensor, y: torch.Tensor, *, steps: int, batch_size: int, lr: float,
                      check: Check) -> float:
    """Images/s of a plain fp32 NCHW loop over uint8 images kept on the device (2 warm-up steps)."""
    from searchlab.training.trainer import random_crop, random_flip

    dev = check.device
    model.to(dev).to(memory_format=torch.contiguous_format).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    start = None
    for step in range(steps + 2):
        if step == 2:
            check.sync()
            start = time.perf_counter()
        idx = torch.randint(0, len(x), (batch_size,), generator=gen).to(dev)
        xb = random_flip(random_crop(x[idx], 4, gen), gen).float().mul_(2.0 / 255.0).sub_(1.0)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    check.sync()
    return steps * batch_size / (time.perf_counter() - start)


def part_trainer(check: Check, cap: float) -> None:
    verify_graph(check)
    train, _ = cifar(check)
    steps = 1 if check.smoke else 200
    batch = 4 if check.smoke else 128
    model = build("resnet20")
    x, y = train.x.to(check.device), train.y.to(check.device)
    plain, rates = [], {name: [] for name in VARIANTS}
    for _ in range(1 if check.smoke else 2):  # the loops take turns; the best of each is kept
        plain.append(plain_device_loop(copy.deepcopy(model), x, y, steps=steps, batch_size=batch, lr=0.1,
                                       check=check))
        for name, settings in VARIANTS.items():
            rates[name].append(trainer_rate(copy.deepcopy(model), train, steps=steps, batch=batch, check=check,
                                            **settings))
    note = f"ResNet-20, {len(train)} images, batch {batch}, {steps} steps, crop+flip, best of {len(plain)}"
    check.figure("trainer", "plain fp32 loop, data on device", max(plain), "images/s", note)
    for name in VARIANTS:
        check.figure("trainer", name, max(rates[name]), "images/s", f"{max(rates[name]) / max(plain):.2f}x the plain loop")
    ours = max(rates[next(iter(VARIANTS))])
    check.figure("trainer", "ratio trainer / plain fp32 on device", ours / max(plain), "x", "target >= 2x")


# --------------------------------------------------------------------------------------------------
# 2. ResNet-20 and ResNet-56: published accuracy, then pruning at 2x (gpu_resnets.py)
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# 3. searches at the papers' scale (measured before; run with --parts)
# --------------------------------------------------------------------------------------------------

def per_minute(check: Check, part: str, outcome, wall: float, trials: list, note: str) -> None:
    done = [t for t in trials if t.cached_from is None]
    failed = [t for t in done if not t.result.ok]
    seconds = sum(t.result.cost.get("seconds", 0.0) for t in done)
    check.figure(part, "candidates evaluated", len(done), "", f"{len(failed)} failed, {outcome.reason}, {wall:.0f} s")
    if failed:
        check.figure(part, "first failure", failed[0].result.error)
    check.figure(part, "candidates per minute (run loop wall time)", 60 * len(done) / wall, "1/min", note)
    if seconds:
        check.figure(part, "candidates per minute (evaluation time)", 60 * len(done) / seconds, "1/min", note)


def part_binary(check: Check, cap: float) -> None:
    train_size = 32 if check.smoke else 5000
    _, outcome, wall, trials = run_search(
        check, "binary", space="binary", strategy="binary-ga", evaluator="binary-train",
        space_config={"net": "vgg-small", "width_scale": 0.125 if check.smoke else 1.0},
        strategy_config={"population": 2 if check.smoke else 8, "generations": 1 if check.smoke else 4},
        evaluator_config={"data": cifar_spec(check), "train_size": train_size, "val_size": 0 if check.smoke else 2000,
                          "epochs_per_candidate": 1 if check.smoke else 2},
        max_time=5 if check.smoke else cap - 15)
    per_minute(check, "binary", outcome, wall, trials,
               f"VGG-Small {'x0.125' if check.smoke else 'full widths'}, {train_size} images x "
               f"{1 if check.smoke else 2} epochs per candidate")


def part_sr(check: Check, cap: float) -> None:
    train = find(check, "BSD68", "set5")
    _, outcome, wall, trials = run_search(
        check, "sr", space="sr", strategy="esrn", evaluator="sr-proxy",
        space_config={"scale": 2, "params": "20k:40k" if check.smoke else "300k:330k"},
        strategy_config={"population": 2 if check.smoke else 8, "generations": 1 if check.smoke else 20,
                         "elites": 1 if check.smoke else 2},
        evaluator_config={"train": str(train), "epochs_per_candidate": 0.25 if check.smoke else 2.0,
                          "val_images": 1 if check.smoke else 4},
        max_time=5 if check.smoke else cap - 5)
    per_minute(check, "sr", outcome, wall, trials,
               f"x2, {'20k-40k' if check.smoke else '300k-330k'} params, {'0.25' if check.smoke else '2'} proxy epochs "
               f"on {train.name}")


def part_cyclegan(check: Check, cap: float) -> None:
    import numpy as np

    from searchlab.evolvers.gan_coevolution import GanFitness, GanFitnessConfig
    from searchlab.search_spaces import cyclegan as cg

    torch.manual_seed(0)
    ngf = [4, 8, 16, 8, 4] if check.smoke else [64, 128, 256, 128, 64]
    gen = cg.ResnetGenerator(ngf, 2 if check.smoke else 9, affine=True).eval()
    images = cg.read_unpaired(find(check, "horse2zebra_mini", "horse2zebra_mini"))
    side = int(images["trainA"].shape[-1])
    space = cg.CycleganSpace({"A": gen}, {}, images)
    evals = 2 if check.smoke else 20
    for keep in (0.5, 0.8):
        rng = np.random.default_rng(0)
        space.init_keep = keep
        genomes = [{"side": "A", "mask": space.random_mask("A", rng), "partner": None} for _ in range(evals)]
        rates, scores = {}, {}
        for mode in ("mask", "rebuild"):
            ev = GanFitness(space, GanFitnessConfig(fitness="fidelity", apply=mode), val_images=8)
            ev.evaluate(genomes[0], seed=0, device=str(check.device))  # reference outputs cached, kernels warm
            check.sync()
            t0 = time.perf_counter()
            scores[mode] = [ev.evaluate(g, seed=0, device=str(check.device)).objectives["fitness"] for g in genomes]
            check.sync()
            rates[mode] = evals / (time.perf_counter() - t0)
        differ = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(scores["mask"], scores["rebuild"]))
        note = (f"keep {keep}, {cg.count_params(gen):,}-param generator, {side}x{side}, "
                f"fitness agrees to {differ:.1e} relative")
        check.figure("cyclegan", f"masked eval/s, keep {keep}", rates["mask"], "1/s", note)
        check.figure("cyclegan", f"rebuilt eval/s, keep {keep}", rates["rebuild"], "1/s", note)
        check.figure("cyclegan", f"ratio rebuilt / masked, keep {keep}", rates["rebuild"] / rates["mask"], "x")


# --------------------------------------------------------------------------------------------------
# 4. the gpu-marked tests
# --------------------------------------------------------------------------------------------------

def part_gpu_tests(check: Check, cap: float) -> None:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           *check.args.test_paths]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=cap)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr.strip()[-300:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    check.figure("gpu_tests", "pytest -m gpu", summary.strip("= "), "", f"exit {proc.returncode}")
    for word in ("passed", "failed", "skipped"):
        check.figure("gpu_tests", word, counts.get(word, 0))
    if counts.get("failed") or counts.get("error") or counts.get("errors"):
        print("\n".join(lines[-40:]), flush=True)


PARTS = {"trainer": part_trainer,
         "resnet20": partial(part_resnet, name="resnet20"), "prune_resnet20": partial(part_prune, name="resnet20"),
         "resnet56": partial(part_resnet, name="resnet56"), "prune_resnet56": partial(part_prune, name="resnet56"),
         "binary": part_binary, "sr": part_sr, "cyclegan": part_cyclegan, "gpu_tests": part_gpu_tests}


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------

def _alarm(signum, frame):
    raise PartTimeout()


def run_part(check: Check, name: str, cap: float) -> str:
    """Run one part under its cap; 'ok', 'failed' or 'timeout' (its error printed, never raised)."""
    start, cpu = time.perf_counter(), time.process_time()
    print(f"--- {name} (cap {cap:.0f} s)", flush=True)
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, cap + GRACE)
    status = "ok"
    try:
        PARTS[name](check, cap)
    except PartTimeout:
        status = "timeout"
        check.figure(name, "error", f"interrupted after {time.perf_counter() - start:.0f} s (cap {cap:.0f} s + "
                                    f"{GRACE} s grace)")
    except Exception as exc:  # noqa: BLE001 - the next part runs whatever this one did
        status = "failed"
        check.figure(name, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        traceback.print_exc(limit=-4)
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    check.figure(name, "part seconds", round(time.perf_counter() - start, 1), "s",
                 f"{status}, {time.process_time() - cpu:.0f} CPU s in this process")
    if check.device.type == "cuda":
        torch.cuda.empty_cache()
    return status


def write_json(check: Check, statuses: dict, path: Path) -> None:
    info = {"device": torch.cuda.get_device_name(check.device) if check.device.type == "cuda" else "cpu",
            "torch": torch.__version__, "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "smoke": check.smoke, "parts": statuses, "figures": check.figures}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED), help="folder with the data (see above; default ../shared/data)")
    p.add_argument("--out", default="gpu-check", help="folder for figures.json (rewritten after each part) and "
                                                       "the trained weights")
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=None,
                   help=f"parts to run, in order (default: {' '.join(DEFAULT_PARTS)}; --smoke: all)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU from tests/data (checks the kit runs)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu (--smoke: cpu)")
    p.add_argument("--cap-scale", type=float, default=1.0, help="multiply every part's time cap")
    p.add_argument("--deadline", type=float, default=330.0, help="seconds from the start by which every part "
                                                                  "has ended (caps are cut to fit)")
    p.add_argument("--test-paths", nargs="+", default=["tests"], help="where part gpu_tests looks for tests")
    p.add_argument("--work", default="", help="folder for runs (default: a temporary folder)")
    args = p.parse_args(argv)
    parts = args.parts or (list(PARTS) if args.smoke else DEFAULT_PARTS)

    from searchlab.training.trainer import resolve_device

    if not args.smoke and args.device == "auto" and not torch.cuda.is_available():
        print("skipped: no CUDA device here (--smoke checks the kit on CPU; --device cpu measures anyway)")
        return 0
    device = torch.device("cpu") if args.smoke else resolve_device(args.device)
    # cudnn.benchmark stays off, as for users: searches meet new layer shapes with nearly every candidate,
    # and autotuning each one cost the first GPU run of this check most of its search time.
    if device.type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1) if args.smoke else (os.cpu_count() or 1))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out = Path(args.out)
    for folder in (work, out):
        folder.mkdir(parents=True, exist_ok=True)
    check = Check(args, device, work, out)
    caps = SMOKE_CAPS if args.smoke else CAPS
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu check on {name}, torch {torch.__version__}, {os.cpu_count()} CPUs, work folder {work}", flush=True)
    statuses: dict[str, str] = {}
    started = time.perf_counter()
    for part in parts:
        left = args.deadline - (time.perf_counter() - started) - GRACE
        cap = caps[part] * args.cap_scale if args.smoke else min(caps[part] * args.cap_scale, left)
        if cap < 20 and not args.smoke:
            statuses[part] = "skipped"
            check.figure(part, "skipped", f"{max(0.0, left):.0f} s left before the deadline")
        else:
            statuses[part] = run_part(check, part, cap)
        write_json(check, statuses, out / "figures.json")
    print(f"done in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v}" for k, v in statuses.items()),
          flush=True)
    print(f"figures written to {out / 'figures.json'}", flush=True)
    return 0 if all(v == "ok" for v in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
