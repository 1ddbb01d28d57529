"""After a prune run: cut the best mask out of the network, fine-tune it, measure it (test accuracy,
FLOPs, CPU latency) and write the pruned/ folder, a report and a plot of filters kept per layer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from searchlab import io, progress
from searchlab.protocols import Context
from searchlab.search_spaces.filter_masks import FilterMaskSpace, measured_flops, prune_model
from searchlab.search_spaces.filter_masks.pruned import write_pruned
from searchlab.search_spaces.filter_masks.setup import PruneProblem


@torch.no_grad()
def cpu_latency_ms(models: list[nn.Module], x: torch.Tensor, repeats: int = 30) -> list[float]:
    """Best CPU wall time of one forward pass of each model on the batch `x`, in ms, over `repeats` rounds
    in which the models take turns. The minimum is the run least disturbed by other processes (the median
    swings several-fold on a shared machine)."""
    models = [m.cpu().eval() for m in models]
    x = x.cpu()
    for m in models:
        for _ in range(3):
            m(x)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for i, m in enumerate(models):
            t = time.perf_counter()
            m(x)
            times[i].append(time.perf_counter() - t)
    return [1000.0 * float(np.min(t)) for t in times]


def plot_filters(kept: dict[str, list[int]], path: Path, title: str) -> Path:
    """Bar chart of filters kept per layer against the original width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(kept)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(names) + 2), 4))
    xs = np.arange(len(names))
    ax.bar(xs, [kept[n][1] for n in names], color="#d9d9d9", label="original")
    ax.bar(xs, [kept[n][0] for n in names], color="#1f77b4", label="kept")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("filters")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def lost_most(before: float, after: float, classes: int) -> bool:
    """Whether a pruned network kept less than half of its accuracy above chance (1 / classes)."""
    chance = 1.0 / max(2, classes)
    return before > chance and after - chance < 0.5 * (before - chance)


def finalize(space: FilterMaskSpace, evaluator: Any, best: dict, ctx: Context) -> dict:
    """Cut the best mask out of the network, fine-tune it, measure it and write model, report and plot."""
    from searchlab.training.trainer import TrainConfig, evaluate_classifier, train_classifier

    problem: PruneProblem = space.problem  # type: ignore[attr-defined]
    cfg = problem.config
    genome = space.validate(best["genome"])
    device = ctx.device
    base = problem.model
    before = evaluate_classifier(base, problem.test, device=device)
    base.cpu()
    pruned = prune_model(base, space.plan, genome)
    after_search = evaluate_classifier(pruned, problem.test, device=device)
    ft = {"seconds": 0.0, "epochs": 0.0}
    if cfg.finetune_epochs > 0:
        tcfg = TrainConfig.preset("classifier", epochs=cfg.finetune_epochs, lr=cfg.lr / 5, batch_size=cfg.batch_size)
        with progress.step(f"fine-tuning the pruned {cfg.model} for {cfg.finetune_epochs:g} epochs"):
            stats = train_classifier(pruned, problem.train, tcfg, seed=ctx.seed, device=device, verbose=ctx.verbose)
        ft = {"seconds": stats.seconds, "epochs": stats.epochs}
    after_ft = evaluate_classifier(pruned, problem.test, device=device)
    pruned.cpu().eval()
    base.cpu().eval()
    example = torch.zeros(problem.input_shape)
    flops_before, flops_after = measured_flops(base, example), measured_flops(pruned, example)
    params_before = sum(p.numel() for p in base.parameters())
    params_after = sum(p.numel() for p in pruned.parameters())
    from searchlab.training.trainer import to_float

    images = to_float(problem.test.x[:64])
    lat_before, lat_after = cpu_latency_ms([base, pruned], images[:1], repeats=50)
    lat64_before, lat64_after = cpu_latency_ms([base, pruned], images, repeats=20)
    kept = space.kept_per_layer(genome)
    report = {
        "model": cfg.model, "data": cfg.data, "best_trial": best["id"], "genome": genome,
        "params_before": params_before, "params_after": params_after,
        "flops_before": flops_before, "flops_after": flops_after,
        "compression": params_before / params_after, "flops_reduction": flops_before / flops_after,
        "test_accuracy_before": before["accuracy"], "test_accuracy_after_search": after_search["accuracy"],
        "test_accuracy_after_finetune": after_ft["accuracy"],
        "accuracy_drop_points": 100.0 * (before["accuracy"] - after_ft["accuracy"]),
        "cpu_latency_ms_before": lat_before, "cpu_latency_ms_after": lat_after, "speedup": lat_before / lat_after,
        "cpu_latency_ms_batch64_before": lat64_before, "cpu_latency_ms_batch64_after": lat64_after,
        "speedup_batch64": lat64_before / lat64_after,
        "cpu_threads": torch.get_num_threads(), "finetune": ft, "kept_per_layer": kept,
        "test_images": len(problem.test), "fitness_images": len(problem.val), "train_images": len(problem.train),
    }
    if lost_most(before["accuracy"], after_ft["accuracy"], int(problem.kwargs.get("num_classes") or 10)):
        report["warning"] = (f"test accuracy fell from {100 * before['accuracy']:.2f}% to "
                             f"{100 * after_ft['accuracy']:.2f}% after fine-tuning, most of the way to chance: the "
                             f"network was pruned past what {cfg.finetune_epochs:g} epochs recover; ask for a larger size (--max-flops / --max-params, or a smaller --lam), "
                             f"fine-tune longer (--finetune-epochs) or score candidates after recovery "
                             f"(--bn-images, --candidate-steps)")
    if space.budget is not None:
        reached = flops_after if space.budget.measure == "flops" else params_after
        report["budget"] = {**space.budget.to_json(), "reached": reached, "summary": space.budget.summary(reached)}
    if ctx.run_dir is not None:
        out = Path(ctx.run_dir) / "pruned"
        out.mkdir(parents=True, exist_ok=True)
        write_pruned(out, pruned, model=cfg.model, model_kwargs=problem.kwargs, input_shape=problem.input_shape,
                     layers=list(cfg.layers), genome=genome, kept_per_layer=kept)
        io.write_json(out / "report.json", report)
        plot_filters(kept, out / "filters.png",
                     f"{cfg.model}: {flops_before / flops_after:.2f}x fewer FLOPs, test acc "
                     f"{100 * before['accuracy']:.2f}% -> {100 * after_ft['accuracy']:.2f}%")
        report["written"] = str(out)
    return {k: report[k] for k in ("params_before", "params_after", "flops_before", "flops_after", "compression",
                                   "flops_reduction", "test_accuracy_before", "test_accuracy_after_search",
                                   "test_accuracy_after_finetune", "cpu_latency_ms_before", "cpu_latency_ms_after",
                                   "speedup", "speedup_batch64")} | {k: report[k] for k in ("budget", "warning", "written")
                                                                     if k in report}
