"""Summaries of a run for `status` and `report`: counts, best so far, budget use, Pareto front, plots."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from searchlab.objectives import sign
from searchlab.store.run_store import Trial
from searchlab.store.run_view import RunView


def trial_row(t: Trial) -> dict:
    """One stored trial as plain data: id, key, genome, state (asked, running, done, failed), cached_from,
    objectives, cost, error."""
    result = t.result
    return {"id": t.id, "key": t.key, "genome": t.genome, "state": t.state, "cached_from": t.cached_from,
            "objectives": dict(result.objectives) if result else {}, "cost": dict(result.cost) if result else {},
            "error": result.error if result else None}


def failure_reasons(rows: list[dict], top: int = 3) -> list[dict]:
    """The most common errors of failed trials: [{"error", "count"}], most frequent first."""
    counts = Counter(r["error"] or "unknown error" for r in rows if r["state"] == "failed")
    return [{"error": e, "count": n} for e, n in counts.most_common(top)]


def status(run: RunView) -> dict:
    """Counts by state, best trial, and budget used against its limits."""
    config = run.config
    best = run.best()
    used = run.budget_used()
    budget = {k: {"used": used[k], "limit": v} for k, v in config.get("budget", {}).items()}
    told = [t for t in run.trials() if t.result is not None]
    return {"run": str(run.run_dir), "space": config["space"], "strategy": config["strategy"],
            "evaluator": config["evaluator"], "seed": run.seed, "backend": config.get("backend"),
            "workers": config.get("workers"), "objectives": run.objectives, "trials": run.counts(),
            "budget": budget, "size_budget": size_budget(run), "best": best.to_json() if best else None,
            "failures": failure_reasons([trial_row(t) for t in told]),
            "reproducibility": {"created": run.created, "versions": run.versions, "config": config}}


def size_budget(run: RunView) -> dict | None:
    """A GA run's hard size budget (`--max-flops`, `--max-params`, ...) and the size of its best candidate so
    far, from the strategy's last saved state; None for runs without one."""
    from searchlab.size_target import SizeBudget

    state = run.strategy_state()
    if not isinstance(state, dict) or not isinstance(state.get("budget"), dict):
        return None
    try:
        budget = SizeBudget.from_json(state["budget"])
    except (KeyError, TypeError, ValueError):
        return None
    best = state.get("best_so_far") if isinstance(state.get("best_so_far"), dict) else {}
    reached = best.get("size") if isinstance(best.get("size"), (int, float)) else None
    return {**budget.to_json(), "reached": reached, "summary": budget.summary(reached)}


def best_so_far(trials: list[Trial], objectives: dict[str, str]) -> list[tuple[int, float]]:
    """(number of evaluated candidates, best primary objective so far) after each new best."""
    name, mode = next(iter(objectives.items()))
    curve, best, evaluated = [], -math.inf, 0
    for t in trials:
        if t.cached_from is None:
            evaluated += 1
        if t.result is not None and t.result.ok and name in t.result.objectives:
            value = sign(mode) * t.result.objectives[name]
            if value > best:
                best = value
                curve.append((evaluated, sign(mode) * best))
    return curve


def pareto_front(points: list[tuple[float, float]], modes: tuple[str, str]) -> list[int]:
    """Indices of the non-dominated points for two objectives with the given directions."""
    signs = [sign(m) for m in modes]
    pts = [(signs[0] * a, signs[1] * b) for a, b in points]
    front = []
    for i, (a, b) in enumerate(pts):
        dominated = any((c >= a and d >= b) and (c > a or d > b) for j, (c, d) in enumerate(pts) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: pts[i][0])


def report(run: RunView) -> dict:
    trials = run.trials()
    objectives = run.objectives
    out = status(run)
    out["best_so_far"] = [{"evaluated": n, "value": v} for n, v in best_so_far(trials, objectives)] if objectives else []
    names = list(objectives)
    if len(names) >= 2:
        ok = [t for t in trials if t.cached_from is None and t.result and t.result.ok
              and names[0] in t.result.objectives and names[1] in t.result.objectives]
        pts = [(t.result.objectives[names[0]], t.result.objectives[names[1]]) for t in ok]
        idx = pareto_front(pts, (objectives[names[0]], objectives[names[1]]))
        out["pareto_front"] = [{"trial": ok[i].id, names[0]: pts[i][0], names[1]: pts[i][1]} for i in idx]
    return out


def plot(run: RunView, path: str | Path) -> Path:
    """Best-so-far curve, plus the Pareto front of the first two objectives when there are two."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = run.config
    trials = run.trials()
    objectives = run.objectives
    names = list(objectives)
    panels = 2 if len(names) >= 2 else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    curve = best_so_far(trials, objectives)
    if curve:
        xs = [c[0] for c in curve] + [sum(1 for t in trials if t.cached_from is None)]
        ys = [c[1] for c in curve] + [curve[-1][1]]
        ax.step(xs, ys, where="post")
    ax.set_xlabel("evaluated candidates")
    ax.set_ylabel(f"best {names[0]}" if names else "best")
    ax.set_title(f"{config['space']} / {config['strategy']}: best so far")
    ax.grid(alpha=0.3)
    if panels == 2:
        ax = axes[0][1]
        ok = [t for t in trials if t.cached_from is None and t.result and t.result.ok
              and names[0] in t.result.objectives and names[1] in t.result.objectives]
        pts = [(t.result.objectives[names[1]], t.result.objectives[names[0]]) for t in ok]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, alpha=0.5, label="evaluated")
        idx = pareto_front([(p[1], p[0]) for p in pts], (objectives[names[0]], objectives[names[1]]))
        front = sorted((pts[i] for i in idx), key=lambda p: p[0])
        ax.plot([p[0] for p in front], [p[1] for p in front], "r.-", label="Pareto front")
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
