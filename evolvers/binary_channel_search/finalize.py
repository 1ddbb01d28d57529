"""After a binary run: a Pareto plot of every candidate, the best code trained longer and saved (and, on
request, the 1x binary and full-precision baselines trained the same way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from searchlab.evolvers.binary_channel_search.evaluator import BinaryTrainEvaluator
from searchlab.evolvers.binary_channel_search.strategy import BinaryGAConfig, fitness
from searchlab import io, options, result_quality
from searchlab.protocols import Context
from searchlab.search_spaces.binary_widths import BinaryWidthSpace, preset_ratios


def pareto_plot(points: list[dict], path: Path, *, best_key: str | None, budget: float, title: str) -> Path:
    """Accuracy against cost ratio for every evaluated candidate; the Pareto front joined; best ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["cost_ratio"] for p in points]
    ys = [100 * p["accuracy"] for p in points]
    front = sorted((i for i in range(len(points)) if not any(
        xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j] < xs[i] or ys[j] > ys[i]) for j in range(len(points)))),
        key=lambda i: xs[i])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(xs, ys, s=18, alpha=0.6, label="evaluated candidates")
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "r.-", label="Pareto front")
    for p, x, y in zip(points, xs, ys):
        if p["key"] == best_key:
            ax.scatter([x], [y], s=120, facecolors="none", edgecolors="k", label="best (fitness)")
        if p.get("is_1x"):
            ax.annotate("1x", (x, y), textcoords="offset points", xytext=(4, -10))
    if budget > 0:
        ax.axvline(budget, color="gray", ls="--", lw=1, label=f"budget {budget:g}x")
    ax.set_xlabel("FLOPs + BOPs/64, relative to the 1x binary network")
    ax.set_ylabel("held-out accuracy after short training (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _save_model(model: Any, info: dict, run_dir: Path, stem: str) -> None:
    """Weights as safetensors, the network's description as JSON, each written atomically."""
    io.save_safetensors(model.state_dict(), run_dir / f"{stem}.safetensors")
    io.write_json(run_dir / f"{stem}.json", info)


def finalize(space: BinaryWidthSpace, evaluator: BinaryTrainEvaluator, best_trial: dict, ctx: Context) -> dict:
    """Pick the best by fitness, plot every candidate, train the best longer and save it (and baselines)."""
    from searchlab import progress

    run_dir = Path(ctx.run_dir)
    rows = [{"id": t.id, "key": t.key, "genome": t.genome, "result": t.result} for t in ctx.run.evaluated()]
    strat = ctx.run.config.get("strategy_config", {})
    lam = float(strat.get("lam", 0.0))
    target = options.build(BinaryGAConfig, strat, "the run's strategy options").target
    budget = target.limit(space.base_cost()) / space.base_cost() if target else 0.0  # as a cost ratio
    one_x_key = space.key(space.one_x())
    points = []
    for r in rows:
        ratio = space.cost_ratio(r["genome"])
        points.append({"key": r["key"], "genome": r["genome"], "ratios": space.ratios_of(r["genome"]),
                       "accuracy": r["result"].objectives["accuracy"], "cost_ratio": ratio,
                       "fitness": fitness(r["result"], ratio, lam), "is_1x": r["key"] == one_x_key})
    if not points:
        return {}
    in_budget = [p for p in points if budget <= 0 or p["cost_ratio"] <= budget + 1e-9] or points
    best = max(in_budget, key=lambda p: p["fitness"])
    plot = pareto_plot(points, run_dir / "pareto.png", best_key=best["key"], budget=budget,
                       title=f"binary {space.net}: {len(points)} candidates")
    summary = {"best_ratios": best["ratios"], "best_key": best["key"], "best_search_accuracy": best["accuracy"],
               "best_cost_ratio": best["cost_ratio"], "pareto_plot": str(plot)}
    if not isinstance(evaluator, BinaryTrainEvaluator):  # another evaluator: nothing to train here
        return summary
    ec = evaluator.config
    jobs = [("best", best["ratios"], True)]
    if ec.compare_baselines:
        jobs += [("binary-1x",) + tuple(preset_ratios(space.net, "binary-1x")),
                 ("full-precision",) + tuple(preset_ratios(space.net, "full-precision"))]
    final_size = ec.final_train_size or ec.train_size
    results = {}
    for name, ratios, binary in progress.bar(jobs, desc="final training", unit="network",
                                             show=ctx.verbose or (progress.enabled() and len(jobs) > 1)):
        model, m = evaluator.train(ratios, binary=binary, epochs=ec.final_epochs, seed=ctx.seed, device=ctx.device,
                                   train_size=final_size, test=True)
        m["cost_ratio"] = m["flops_bops64"] / space.base_cost()
        results[name] = {"ratios": ratios, "binary": binary, **m}
        if name == "best":
            _save_model(model, {"net": space.net, "ratios": ratios, "binary": True, "act": space.config.act,
                                "width_scale": space.config.width_scale, "image_size": space.config.image_size,
                                "widths": getattr(model, "widths", None), **m}, run_dir, "best_model")
    summary["final_model"] = str(run_dir / "best_model.safetensors")
    top = sorted(in_budget, key=lambda p: p["fitness"], reverse=True)[:5]
    summary["top_codes"] = [{"ratios": p["ratios"], "accuracy": round(p["accuracy"], 4),
                             "cost_ratio": round(p["cost_ratio"], 3)} for p in top]
    metric = "test_accuracy" if "test_accuracy" in results["best"] else "accuracy"
    summary["final_" + metric] = results["best"][metric]
    if ec.compare_baselines:
        b, f, s = (results[k][metric] for k in ("binary-1x", "full-precision", "best"))
        summary["binary_1x_" + metric] = b
        summary["full_precision_" + metric] = f
        # share of the (full precision - 1x binary) gap the searched net closes; undefined without a gap
        summary["gap_closed"] = (s - b) / (f - b) if f > b else None
    chance = 1.0 / max(2, evaluator.splits()[3])
    summary.update(result_quality.check(
        f"final {metric.replace('_', ' ')}", summary["final_" + metric], floor=chance, floor_name="chance",
        near=result_quality.chance_margin(chance), reference=summary.get("full_precision_" + metric),
        reference_name="the full-precision network", fmt=result_quality.percent,
        advice="the searched widths are too narrow for what the training recovers; raise the size limit (or lower "
               "--lam), train longer (--final-epochs) or on more images (--final-train-size)"))
    io.write_json(run_dir / "final.json", {"summary": summary, "models": results, "candidates": points})
    return summary
