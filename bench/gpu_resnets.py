"""GPU check parts for the CIFAR ResNets: each trained to its published accuracy inside a time cap, its
weights kept, then pruned to half its FLOPs by the GA and by Torch-Pruning's L1 pruner, both fine-tuned
the same way. The driver, the caps and the one command are in gpu_check.py.

The recipe is the fast-training one (as airbench and the one-cycle papers train): uint8 images kept on
the GPU, crop+flip there, bf16 channels-last, the step replayed as a CUDA graph, batch 512, SGD
Nesterov with a one-cycle schedule and label smoothing 0.1; the epochs are as many as the measured speed
fits in the cap, so that the schedule always ends (a schedule cut short is no fair accuracy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from gpu_common import Check, build, cifar, cifar_spec, run_search, trainer_rate

# The bars (He et al. 2016, CIFAR-10 test error 8.75% and 6.97%) and the references for pruning at 2x.
PUBLISHED = {"resnet20": (0.912, "He et al. 2016: 91.25%"), "resnet56": (0.930, "He et al. 2016: 93.03%")}
PRUNING_REFERENCES = {
    "resnet20": "Vega Prune-EA: 40.8M -> 19.1M MACs (2.14x), 91.45% -> 90.90%",
    "resnet56": "Torch-Pruning (paper table), ResNet-56 Group-L1: 2.12x fewer FLOPs, 93.53% -> 92.93%",
}
RECIPE = dict(batch_size=512, lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4, label_smoothing=0.1,
              schedule="onecycle", augment="crop_flip")
MAX_EPOCHS = 100
BLOCKS = {"resnet20": 3, "resnet56": 9}
# GA population: repairing each random mask to the FLOPs budget drops filters one at a time on the CPU,
# which for ResNet-56's 1,008 filters would take most of its part's cap at 32 masks.
POPULATION = {"resnet20": 32, "resnet56": 12}


def part_resnet(check: Check, cap: float, name: str) -> None:
    """Train `name` on the 50,000 training images for as many epochs as fit, score it on the 10,000 test
    images and write its weights to the output folder."""
    from searchlab.io import save_safetensors
    from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier

    start = time.perf_counter()
    train, test = cifar(check)
    batch = 8 if check.smoke else RECIPE["batch_size"]
    rate = 1.0 if check.smoke else trainer_rate(build(name), train, steps=40, batch=batch, check=check)
    left = cap - (time.perf_counter() - start) - (0 if check.smoke else 8)  # 8 s: evaluation, saving
    epochs = 1 if check.smoke else max(1, min(MAX_EPOCHS, int(0.9 * left * rate / len(train))))
    cfg = TrainConfig(epochs=epochs, max_seconds=max(1.0, left), max_steps=2 if check.smoke else 0,
                      **{**RECIPE, "batch_size": batch})
    model = build(name, seed=0)
    stats = train_classifier(model, train, cfg, seed=0, device=check.device)
    accuracy = evaluate_classifier(model, test, device=check.device)["accuracy"]
    bar, published = PUBLISHED[name]
    check.figure(name, "test accuracy", round(100 * accuracy, 2), "%",
                 f"{'reached' if accuracy >= bar else 'NOT reached'}: bar {100 * bar:.1f}% ({published}); "
                 f"{len(test)} test images, no test-time augmentation")
    check.figure(name, "test accuracy, flip-averaged", round(100 * flip_averaged_accuracy(model, test, check.device), 2),
                 "%", "each test image's logits averaged with its mirror's")
    check.figure(name, "training time", round(stats.seconds, 1), "s",
                 f"{stats.epochs:g} of {epochs} planned epochs ({stats.steps} steps, stopped by {stats.stopped_by}) "
                 f"on {len(train)} images; step: {stats.cuda_graph}")
    check.figure(name, "training speed", stats.steps * batch / stats.seconds, "images/s",
                 f"batch {batch}, SGD Nesterov lr {cfg.lr} one-cycle, wd {cfg.weight_decay}, label smoothing "
                 f"{cfg.label_smoothing}, crop+flip, {'bf16 ' if check.device.type == 'cuda' else ''}channels-last")
    path = save_safetensors(model.state_dict(), check.out / f"{name}.safetensors")
    check.figure(name, "weights", path.name, "", f"{path.stat().st_size / 1e6:.1f} MB in the output folder: "
                 f"searchlab search prune --model {name} --weights {path.name} ...")
    check.shared[f"{name}_weights"] = str(path)
    check.shared[f"{name}_rate"] = rate


@torch.no_grad()
def flip_averaged_accuracy(model, test, device: torch.device) -> float:
    """Test accuracy with each image's logits averaged with its mirror's (airbench reports this; the
    published ResNet figures do not, so it is shown beside the verdict, not in it)."""
    from searchlab.training.trainer import amp_dtype, autocast, to_float

    model.to(device).eval()
    correct = 0
    for start in range(0, len(test), 1000):
        x = to_float(test.x[start:start + 1000].to(device), channels_last=True)
        with autocast(device, amp_dtype(device)):
            logits = model(x).float() + model(x.flip(3)).float()
        correct += int((logits.argmax(1).cpu() == test.y[start:start + 1000]).sum())
    return correct / len(test)


def block_convs(name: str) -> list[str]:
    """Each residual block's first convolution: what Torch-Pruning can prune alongside option-A shortcuts."""
    return [f"layer{stage}.{block}.conv1" for stage in (1, 2, 3) for block in range(BLOCKS[name])]


def trained_weights(check: Check, name: str) -> str:
    """The weights part `name` wrote in this run, else NAME.safetensors kept from an earlier run in --data."""
    if f"{name}_weights" in check.shared:
        return check.shared[f"{name}_weights"]
    kept = Path(check.args.data) / f"{name}.safetensors"
    if not check.smoke and kept.exists():
        check.figure(f"prune_{name}", "weights", str(kept), "", "kept from an earlier run")
        return str(kept)
    raise RuntimeError(f"no trained {name}: run part {name} first, or put {name}.safetensors in --data")


def part_prune(check: Check, cap: float, name: str) -> None:
    """The GA at half the FLOPs against Torch-Pruning's L1 pruner keeping the same filters per layer (and,
    when the cap leaves time, its one-ratio-for-all L1 at the nearest FLOPs), all fine-tuned alike."""
    from pruning_baselines import finetune_and_score, l1_pruned, l1_uniform

    from searchlab.engine import runner
    from searchlab.io import load_into
    from searchlab.search_spaces.filter_masks import measured_flops
    from searchlab.search_spaces.filter_masks.setup import _cached_splits

    part = f"prune_{name}"
    start = time.perf_counter()
    cifar(check)
    weights = trained_weights(check, name)
    layers = block_convs(name)
    lr, batch = (0.05, 8) if check.smoke else (0.2, 512)  # fine-tuning runs at lr / 5 (the space's rule)
    pruned_rate = 1.5 * check.shared.get(f"{name}_rate", 20000.0)  # half the FLOPs: faster, not 2x
    ft_epochs = 0.2 if check.smoke else max(2, min(30, int(0.15 * cap * pruned_rate / 49000)))
    space_config = {"model": name, "data": cifar_spec(check), "weights": weights, "size_measure": "flops",
                    "max_flops": "0.5", "layers": layers, "val_size": 10 if check.smoke else 1000,
                    "finetune_epochs": ft_epochs, "lr": lr, "batch_size": batch}
    if check.smoke:
        space_config["bn_images"] = 8
    population = 4 if check.smoke else POPULATION[name]
    run_dir, outcome, wall, trials = run_search(
        check, part, space="prune", strategy="prune-ga", evaluator="masked-fitness", space_config=space_config,
        strategy_config={"population": population, "generations": 1 if check.smoke else 1000},
        evaluator_config={}, max_time=5 if check.smoke else 0.35 * cap)
    scored = [t for t in trials if t.cached_from is None]
    check.figure(part, "GA candidates", len(trials), "", f"{len(scored)} scored, {outcome.reason}, population "
                 f"{population}, max_flops 0.5, {len(layers)} layers, {wall:.0f} s")
    runner.finalize(run_dir, plugins=["searchlab.evolvers.filter_pruning.plugin"])
    report = json.loads((run_dir / "pruned" / "report.json").read_text())
    before, after = report["flops_before"], report["flops_after"]
    check.figure(part, "FLOPs before -> after", f"{before / 1e6:.1f}M -> {after / 1e6:.1f}M "
                 f"({before / after:.2f}x)", "", "FlopCounterMode, 2 per MAC")
    check.figure(part, "unpruned test accuracy", round(100 * report["test_accuracy_before"], 2), "%")
    check.figure(part, "GA test accuracy after fine-tuning", round(100 * report["test_accuracy_after_finetune"], 2),
                 "%", f"{100 * report['test_accuracy_after_search']:.2f}% before; {ft_epochs} epochs at lr {lr / 5:g}, "
                      f"batch {batch}, {report['finetune']['seconds']:.0f} s")

    train, _, test, _ = _cached_splits(space_config["data"], 0, 2000, 0, space_config["val_size"])
    pretrained = build(name).eval()
    load_into(pretrained, weights, "trained weights")
    example = torch.zeros(1, 3, 32, 32)
    recipe = SimpleNamespace(finetune_epochs=ft_epochs, lr=lr, batch_size=batch)
    l1 = l1_pruned(pretrained, report["kept_per_layer"], example)
    if measured_flops(l1, example) != after:
        raise RuntimeError(f"Torch-Pruning's network has {measured_flops(l1, example)} FLOPs, the GA's {after}")
    l1_accuracy = finetune_and_score(l1, train, test, recipe, seed=0, device=check.device)
    check.figure(part, "L1 (Torch-Pruning) test accuracy after fine-tuning", round(100 * l1_accuracy, 2), "%",
                 "the GA's filter count in every layer, filters of largest L1 norm, the same fine-tuning")
    check.figure(part, "GA minus L1", round(100 * (report["test_accuracy_after_finetune"] - l1_accuracy), 2), "points")
    ft_seconds = report["finetune"]["seconds"]
    time_left = cap - (time.perf_counter() - start) > 1.5 * ft_seconds + 5
    if (check.smoke and name == "resnet20") or (not check.smoke and time_left):  # the smoke runs it once
        uniform, uniform_flops = l1_uniform(pretrained, layers, after, example)
        accuracy = finetune_and_score(uniform, train, test, recipe, seed=0, device=check.device)
        check.figure(part, "L1 one ratio for all layers, test accuracy after fine-tuning", round(100 * accuracy, 2),
                     "%", f"at {uniform_flops / 1e6:.1f}M FLOPs ({before / uniform_flops:.2f}x)")
    else:
        check.figure(part, "L1 one ratio for all layers", "skipped", "", "the cap leaves no time for it")
    check.figure(part, "reference", PRUNING_REFERENCES[name])
