"""The GPU check: every GPU path of searchlab measured by one command, each part under its own time cap.

Parts, in order (a part that fails prints its error and the next part runs; `--parts` picks some):

  trainer    the shared trainer against plain PyTorch loops, ResNet-20 on all 50,000 CIFAR-10 training
             images, same batch size and optimiser: (a) fp32 loop over the images decoded once and kept
             on the device, with the same on-device crop+flip functions (so the ratio isolates what the
             trainer adds: autocast, channels-last, its loop); (b) the usual DataLoader script (per-image
             augmentation in worker processes, pinned memory). Images/s of each, ratios; then the
             trainer with torch.compile when the cap leaves time for it.
  resnet20   ResNet-20 trained on full CIFAR-10 by the trainer (SGD 0.1, cosine, crop+flip) for as many
             epochs as the cap allows at the measured speed: test accuracy on the 10,000 test images.
  prune      the pruning GA (`searchlab search prune`, masked fitness on the GPU, FLOPs as the size
             measure) on that network, then fine-tuning: FLOPs and accuracy before and after, next to
             Vega's Prune-EA (ResNet-20 40.8M -> 19.1M MACs at 90.9% from 91.45%); candidates scored
             per second masked vs rebuilt on the same masks.
  binary     binary channel search candidates per minute at VGG-Small's full widths.
  sr         SR block search candidates per minute at --params 300k:330k.
  cyclegan   CycleGAN fitness evaluations per second at 256x256 on a generator of the trained one's
             shape (ngf 64, 9 blocks; random weights: speed does not depend on them), masked vs rebuilt.
  gpu_tests  the tests marked `gpu` (pytest -m gpu): passed / failed / skipped.

Every figure is printed as one line and all are written to --out as JSON after each part (so a run cut
short still leaves what it measured).

    python bench/gpu_check.py                        # on a CUDA machine, data from ../shared/data (~7 min)
    python bench/gpu_check.py --data DIR --out gpu_check.json
    python bench/gpu_check.py --smoke                # every part at tiny sizes on CPU, from tests/data

--data DIR holds cifar10_jpg.tar.gz, Set5/, BSD68/ and horse2zebra_mini/ (the layout of
../shared/data flattened; each is looked up under DIR, then under DIR's shared-data subfolders).
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
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "data"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Seconds each part may take on the GPU (the whole check: about 7 minutes with data loading).
CAPS = {"trainer": 90, "resnet20": 120, "prune": 100, "binary": 45, "sr": 40, "cyclegan": 25, "gpu_tests": 40}
SMOKE_CAPS = {name: 120 for name in CAPS}
GRACE = 20  # seconds past a part's cap before it is interrupted
VEGA_PRUNE_EA = "Vega Prune-EA, ResNet-20: 40.8M -> 19.1M MACs (81.6M -> 38.2M FLOPs), 91.45% -> 90.9%"


class PartTimeout(Exception):
    """A part ran past its cap plus the grace period."""


@dataclass
class Check:
    """Shared state of one check run: settings, data read once, figures so far."""

    args: argparse.Namespace
    device: torch.device
    work: Path
    figures: list[dict] = field(default_factory=list)
    shared: dict = field(default_factory=dict)

    @property
    def smoke(self) -> bool:
        return self.args.smoke

    def figure(self, part: str, name: str, value, unit: str = "", note: str = "") -> None:
        row = {"part": part, "name": name, "value": value, "unit": unit, "note": note}
        self.figures.append(row)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"[{part}] {name}: {shown}{' ' + unit if unit else ''}{'   (' + note + ')' if note else ''}", flush=True)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------

def find(check: Check, name: str, fixture: str) -> Path:
    """A data file or folder: the fixture under --smoke, else DIR/name or its place in ../shared/data."""
    if check.smoke:
        return FIXTURES / fixture
    base = Path(check.args.data)
    for candidate in (base / name, base / "cifar10" / name, base / "sr" / name, base / "unpaired" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found under {base}; pass --data DIR holding it")


def cifar_spec(check: Check) -> str:
    path = find(check, "cifar10_jpg.tar.gz", "cifar10_mini")
    return f"imagefolder:{path}" if check.smoke else f"cifar10:{path}"


def cifar(check: Check):
    """CIFAR-10 (train, test), decoded once per check."""
    if "cifar" not in check.shared:
        from searchlab.training.data import load_classification

        start = time.perf_counter()
        data = load_classification(cifar_spec(check))
        check.shared["cifar"] = (data.train, data.test)
        check.figure("data", "CIFAR-10 decoded", round(time.perf_counter() - start, 1), "s",
                     f"{len(data.train)} train + {len(data.test)} test images")
    return check.shared["cifar"]


def resnet20(seed: int = 0):
    from searchlab.search_spaces.classifiers import build_classifier

    torch.manual_seed(seed)
    return build_classifier("resnet20")


# --------------------------------------------------------------------------------------------------
# 1. trainer vs plain loops
# --------------------------------------------------------------------------------------------------

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


def trainer_rate(model, train, *, steps: int, batch: int, check: Check, **settings) -> float:
    """Images/s of the shared trainer over `steps` steps after a 2-step warm-up (and compile, if asked)."""
    from searchlab.training.trainer import TrainConfig, train_classifier

    cfg = TrainConfig(epochs=1000, batch_size=batch, lr=0.1, max_steps=2, augment="crop_flip", **settings)
    train_classifier(model, train, cfg, seed=0, device=check.device)
    stats = train_classifier(model, train, replace(cfg, max_steps=steps), seed=1, device=check.device)
    check.sync()
    return stats.steps * batch / stats.seconds


# Trainer settings compared with the plain loop: the default and each of its GPU features turned off.
VARIANTS = {"searchlab trainer (bf16 autocast, channels-last)": {},
            "trainer, autocast off": {"amp": False},
            "trainer, channels-last off": {"channels_last": False},
            "trainer, autocast and channels-last off": {"amp": False, "channels_last": False}}


def part_trainer(check: Check, cap: float) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from trainer_throughput import plain_loop

    train, _ = cifar(check)
    steps = 3 if check.smoke else 200
    batch = 16 if check.smoke else 128
    workers = 0 if check.smoke else min(8, os.cpu_count() or 1)
    model = resnet20()
    x, y = train.x.to(check.device), train.y.to(check.device)
    plain, rates = [], {name: [] for name in VARIANTS}
    start = time.perf_counter()
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
    check.shared["trainer_rate"] = ours
    try:  # worker processes need shared memory, which some machines lack: its failure stays a figure
        loader = plain_loop(copy.deepcopy(model), train, steps=steps, batch_size=batch, device=check.device,
                            augment=True, workers=workers)
        check.figure("trainer", f"plain DataLoader loop ({workers} workers)", loader, "images/s", note)
        check.figure("trainer", "ratio trainer / DataLoader loop", ours / loader, "x")
    except Exception as exc:  # noqa: BLE001
        check.figure("trainer", "plain DataLoader loop", f"failed: {type(exc).__name__}: {exc}"[:300])
    left = cap - (time.perf_counter() - start)
    if not check.smoke and left > 40:  # (the CPU compile path has its own test)
        t0 = time.perf_counter()
        rate = trainer_rate(copy.deepcopy(model), train, steps=steps, batch=batch, check=check, compile=True)
        check.figure("trainer", "searchlab trainer, torch.compile", rate, "images/s",
                     f"compile and warm-up took {time.perf_counter() - t0 - steps * batch / rate:.0f} s")
        check.figure("trainer", "ratio compiled trainer / plain fp32 on device", rate / max(plain), "x")
    else:
        check.figure("trainer", "torch.compile row", "skipped", note=f"{left:.0f} s of the cap left")


# --------------------------------------------------------------------------------------------------
# 2. ResNet-20 on full CIFAR-10
# --------------------------------------------------------------------------------------------------

def part_resnet20(check: Check, cap: float) -> None:
    from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier

    train, test = cifar(check)
    # a larger batch than part 1's: at 128 a network this small leaves the GPU waiting on kernel launches
    batch, lr = (16, 0.1) if check.smoke else (512, 0.2)
    t0 = time.perf_counter()
    rate = trainer_rate(resnet20(), train, steps=2 if check.smoke else 30, batch=batch, check=check)
    check.shared["rate_big_batch"] = (batch, lr, rate)
    left = cap - (time.perf_counter() - t0) - 10
    # the schedule must end inside the cap: a cosine schedule cut short is not a fair accuracy
    epochs = 1 if check.smoke else max(1, min(200, int(0.85 * left * rate / len(train))))
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, weight_decay=5e-4, augment="crop_flip",
                      max_seconds=max(1.0, left))
    model = resnet20()
    stats = train_classifier(model, train, cfg, seed=0, device=check.device)
    metrics = evaluate_classifier(model, test, device=check.device)
    note = (f"{stats.epochs:g} of {epochs} planned epochs, {stats.steps} steps, SGD {lr} cosine, wd 5e-4, batch "
            f"{cfg.batch_size}, stopped by {stats.stopped_by}; published ResNet-20: 91.25-91.45%")
    check.figure("resnet20", "test accuracy", round(100 * metrics["accuracy"], 2), "%", note)
    check.figure("resnet20", "training time", round(stats.seconds, 1), "s", f"{len(test)} test images")
    check.figure("resnet20", "training speed", stats.steps * cfg.batch_size / stats.seconds, "images/s")
    weights = check.work / "resnet20.pt"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    check.shared["resnet20_weights"] = str(weights)
    check.shared["resnet20_accuracy"] = metrics["accuracy"]


# --------------------------------------------------------------------------------------------------
# 3. pruning GA on the trained network
# --------------------------------------------------------------------------------------------------

PLUGINS = ["searchlab.evolvers.filter_pruning.plugin", "searchlab.evolvers.binary_channel_search.plugin",
           "searchlab.evolvers.sr_block_search.plugin"]


def run_search(check: Check, name: str, *, space: str, strategy: str, evaluator: str, space_config: dict,
               strategy_config: dict, evaluator_config: dict, max_time: float):
    """Create and run a search in the work folder; (outcome, wall seconds of the run loop, trials)."""
    from searchlab import registry
    from searchlab.engine import runner
    from searchlab.store.run_store import RunStore

    registry.load_plugins(PLUGINS)
    run_dir = check.work / name
    runner.create_run(run_dir, space=space, strategy=strategy, evaluator=evaluator, space_config=space_config,
                      strategy_config=strategy_config, evaluator_config=evaluator_config, seed=0,
                      budget=runner.Budget(max_time=max_time), device=str(check.device), plugins=PLUGINS)
    start = time.perf_counter()
    outcome = runner.run(run_dir, plugins=PLUGINS)
    wall = time.perf_counter() - start
    with RunStore.open(run_dir) as store:
        trials = [t for t in store.trials() if t.result is not None]
    return outcome, wall, trials


def part_prune(check: Check, cap: float) -> None:
    from searchlab.engine import runner

    start = time.perf_counter()
    weights = check.shared.get("resnet20_weights")
    batch, lr, rate = check.shared.get("rate_big_batch", (16 if check.smoke else 512, 0.2, 5000.0))
    space_config = {"model": "resnet20", "data": cifar_spec(check), "size_measure": "flops", "lam": check.args.lam,
                    "val_size": 50 if check.smoke else 1000, "lr": lr, "batch_size": batch}
    if weights:
        space_config["weights"] = weights
    else:
        space_config["pretrain_epochs"] = 1
        check.figure("prune", "note", "no trained ResNet-20 from part resnet20: pretrained for 1 epoch here")
    finetune_s = 0.3 * cap
    space_config["finetune_epochs"] = 1 if check.smoke else max(1, int(0.8 * finetune_s * rate / 49000))
    ga_time = 5 if check.smoke else max(10.0, 0.45 * cap)
    population = 6 if check.smoke else 32
    outcome, wall, trials = run_search(
        check, "prune", space="prune", strategy="prune-ga", evaluator="masked-fitness", space_config=space_config,
        strategy_config={"population": population, "generations": 2 if check.smoke else 1000},
        evaluator_config={}, max_time=ga_time)
    evaluated = [t for t in trials if t.cached_from is None]
    scored = sum(t.result.cost.get("seconds", 0.0) for t in evaluated)
    check.figure("prune", "GA candidates", len(trials), "", f"{len(evaluated)} scored, {outcome.reason}, "
                 f"population {population}, lam {check.args.lam}, FLOPs as size, {wall:.0f} s")
    check.figure("prune", "GA candidates scored per second", len(evaluated) / max(scored, 1e-9), "1/s",
                 f"masked fitness on {space_config['val_size']} held-out images, {check.device}")
    t0 = time.perf_counter()
    summary = runner.finalize(check.work / "prune", plugins=PLUGINS)
    ft = time.perf_counter() - t0
    check.figure("prune", "FLOPs before -> after", f"{summary['flops_before'] / 1e6:.1f}M -> "
                 f"{summary['flops_after'] / 1e6:.1f}M ({summary['flops_reduction']:.2f}x)", "",
                 "FlopCounterMode, 2 per MAC")
    check.figure("prune", "params before -> after", f"{summary['params_before']} -> {summary['params_after']}")
    check.figure("prune", "test accuracy before / after search / after fine-tuning",
                 f"{100 * summary['test_accuracy_before']:.2f}% / {100 * summary['test_accuracy_after_search']:.2f}% "
                 f"/ {100 * summary['test_accuracy_after_finetune']:.2f}%", "",
                 f"{space_config['finetune_epochs']} fine-tuning epochs, finalize {ft:.0f} s")
    check.figure("prune", "reference", VEGA_PRUNE_EA)
    left = cap - (time.perf_counter() - start)
    masked_vs_rebuilt(check, [t.genome for t in evaluated], min(20.0, max(3.0, left)))


def masked_vs_rebuilt(check: Check, genomes: list[str], seconds: float) -> None:
    """Candidates per second scoring the same masks masked (slice mode) and rebuilt (cut out physically)."""
    from searchlab.search_spaces.filter_masks import MaskedNetwork, analyse, measured_flops, prune_model
    from searchlab.training.trainer import to_float

    train, test = cifar(check)
    n_val = 50 if check.smoke else 1000
    x, y = to_float(test.x[:n_val]).to(check.device), test.y[:n_val].to(check.device)
    model = resnet20().eval()
    if "resnet20_weights" in check.shared:
        model.load_state_dict(torch.load(check.shared["resnet20_weights"], weights_only=True))
    plan = analyse(model, torch.zeros(1, 3, 32, 32))
    masked = MaskedNetwork(model, plan).to(check.device)
    distinct = list(dict.fromkeys(genomes))[-(200 if not check.smoke else 4):]

    @torch.no_grad()
    def acc(forward) -> float:
        return int((forward(x).argmax(1) == y).sum()) / len(x)

    def rebuilt(g):
        net = prune_model(model, plan, g).to(check.device).eval()
        measured_flops(net.cpu(), torch.zeros(1, 3, 32, 32))
        return acc(net.to(check.device))

    acc(lambda xb: masked(xb, distinct[0])), rebuilt(distinct[0])  # warm-up
    rates, answers = {}, {}
    for label, fn in (("masked", lambda g: acc(lambda xb: masked(xb, g))), ("rebuilt", rebuilt)):
        t0, done, answers[label] = time.perf_counter(), 0, []
        for g in distinct:
            answers[label].append(fn(g))
            done += 1
            if time.perf_counter() - t0 > seconds / 2:
                break
        check.sync()
        rates[label] = done / (time.perf_counter() - t0)
    n = min(len(answers["masked"]), len(answers["rebuilt"]))
    worst = max(abs(a - b) for a, b in zip(answers["masked"][:n], answers["rebuilt"][:n]))
    note = f"{n_val} test images per mask, GA masks, same answers to {worst:.4f} accuracy"
    check.figure("prune", "masked candidates/s", rates["masked"], "1/s", note)
    check.figure("prune", "rebuilt candidates/s", rates["rebuilt"], "1/s", "prune_model + FLOP count + forward")
    check.figure("prune", "ratio masked / rebuilt", rates["masked"] / rates["rebuilt"], "x")


# --------------------------------------------------------------------------------------------------
# 4. searches at the papers' scale
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
    train_size = 64 if check.smoke else 5000
    outcome, wall, trials = run_search(
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
    outcome, wall, trials = run_search(
        check, "sr", space="sr", strategy="esrn", evaluator="sr-proxy",
        space_config={"scale": 2, "params": "300k:330k"},
        strategy_config={"population": 2 if check.smoke else 8, "generations": 1 if check.smoke else 20,
                         "elites": 1 if check.smoke else 2},
        evaluator_config={"train": str(train), "epochs_per_candidate": 0.25 if check.smoke else 2.0,
                          "val_images": 1 if check.smoke else 4},
        max_time=5 if check.smoke else cap - 5)
    per_minute(check, "sr", outcome, wall, trials,
               f"x2, 300k-330k params, {'0.25' if check.smoke else '2'} proxy epochs on {train.name}")


def part_cyclegan(check: Check, cap: float) -> None:
    import numpy as np

    from searchlab.evolvers.gan_coevolution import GanFitness, GanFitnessConfig
    from searchlab.search_spaces import cyclegan as cg

    torch.manual_seed(0)
    ngf = [8, 16, 32, 16, 8] if check.smoke else [64, 128, 256, 128, 64]
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
# 5. the gpu-marked tests
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


PARTS = {"trainer": part_trainer, "resnet20": part_resnet20, "prune": part_prune, "binary": part_binary,
         "sr": part_sr, "cyclegan": part_cyclegan, "gpu_tests": part_gpu_tests}


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------

def _alarm(signum, frame):
    raise PartTimeout()


def run_part(check: Check, name: str, cap: float) -> str:
    """Run one part under its cap; 'ok', 'failed' or 'timeout' (its error printed, never raised)."""
    start = time.perf_counter()
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
    check.figure(name, "part seconds", round(time.perf_counter() - start, 1), "s", status)
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
    p.add_argument("--out", default="gpu_check.json", help="JSON file of every figure, rewritten after each part")
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS), help="parts to run, in order")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU from tests/data (checks the kit runs)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu (--smoke: cpu)")
    p.add_argument("--cap-scale", type=float, default=1.0, help="multiply every part's time cap")
    p.add_argument("--lam", type=float, default=0.3, help="pruning fitness weight of the FLOPs removed")
    p.add_argument("--test-paths", nargs="+", default=["tests"], help="where part gpu_tests looks for tests")
    p.add_argument("--work", default="", help="folder for runs and weights (default: a temporary folder)")
    args = p.parse_args(argv)

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
    work.mkdir(parents=True, exist_ok=True)
    check = Check(args, device, work)
    out = Path(args.out)
    caps = SMOKE_CAPS if args.smoke else CAPS
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu check on {name}, torch {torch.__version__}, {os.cpu_count()} CPUs, work folder {work}", flush=True)
    statuses: dict[str, str] = {}
    started = time.perf_counter()
    for part in args.parts:
        statuses[part] = run_part(check, part, caps[part] * args.cap_scale)
        write_json(check, statuses, out)
    print(f"done in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v}" for k, v in statuses.items()),
          flush=True)
    print(f"figures written to {out}", flush=True)
    return 0 if all(v == "ok" for v in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
