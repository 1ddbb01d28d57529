"""Summaries of a run for `status` and `report`: counts, best so far, budget use, Pareto front, plots."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from searchlab.errors import ConfigError
from searchlab.objectives import NAMES, axis_scale, sign, tradeoff_axes
from searchlab.store.run_store import Trial
from searchlab.store.run_view import RunView
from searchlab.size_target import human


def trial_row(t: Trial) -> dict:
    """One stored trial as plain data: id, key, genome, state (asked, running, done, failed), cached_from,
    objectives, cost, error."""
    result = t.result
    return {"id": t.id, "key": t.key, "genome": t.genome, "state": t.state, "cached_from": t.cached_from,
            "objectives": dict(result.objectives) if result else {}, "cost": dict(result.cost) if result else {},
            "error": result.error if result else None}


# the states `trials(state=...)` and `searchlab trials --state` take ("cached": answered from an earlier trial)
TRIAL_STATES = ("asked", "running", "done", "failed", "cached")


def filter_trials(rows: list[dict], state: str | None) -> list[dict]:
    """The rows (as `trial_row` gives them) in `state`; all of them for None."""
    if state is not None and state not in TRIAL_STATES:
        raise ConfigError(f"state must be one of {', '.join(TRIAL_STATES)}, got {state!r}")
    if state == "cached":
        return [r for r in rows if r["cached_from"] is not None]
    return [r for r in rows if state is None or r["state"] == state]


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


def tradeoff(run: RunView) -> tuple[str, str] | None:
    """(quality, cost) objectives of the run's trade-off (accuracy against FLOPs, ...); a size budget's
    measure is the cost when the run has one."""
    budget = size_budget(run)
    return tradeoff_axes(run.objectives, budget["measure"] if budget else None)


def tradeoff_points(trials: list[Trial], quality: str, cost: str) -> list[Trial]:
    """The evaluated (not cached) trials with both objectives finite."""
    return [t for t in trials if t.cached_from is None and t.result and t.result.ok
            and all(math.isfinite(t.result.objectives.get(n, math.nan)) for n in (quality, cost))]


def report(run: RunView) -> dict:
    trials = run.trials()
    objectives = run.objectives
    out = status(run)
    out["best_so_far"] = [{"evaluated": n, "value": v} for n, v in best_so_far(trials, objectives)] if objectives else []
    axes = tradeoff(run)
    if axes:
        quality, cost = axes
        ok = tradeoff_points(trials, quality, cost)
        pts = [(t.result.objectives[quality], t.result.objectives[cost]) for t in ok]
        idx = pareto_front(pts, (objectives[quality], objectives[cost]))
        out["pareto_front"] = [{"trial": ok[i].id, quality: pts[i][0], cost: pts[i][1]} for i in idx]
    return out


def is_unpruned(genome) -> bool:
    """A filter mask that keeps every filter: the network the compression search started from."""
    return isinstance(genome, str) and len(genome) > 0 and set(genome) == {"1"}


def plot(run: RunView, path: str | Path) -> Path:
    """The search's progress (best so far of its primary objective) and, when the run has a quality and a cost
    objective, the trade-off: quality against cost for every evaluated candidate, the Pareto front joined,
    the unpruned network and the size target marked where known. Every axis names its unit."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = plot_figure(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_figure(run: RunView):
    """The figure `plot` writes (its axes are what tests check)."""
    import matplotlib.pyplot as plt

    config, trials, objectives = run.config, run.trials(), run.objectives
    axes_names = tradeoff(run)
    panels = 2 if axes_names else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 4.4), squeeze=False)
    _progress_panel(axes[0][0], trials, objectives, f"{config['space']} / {config['strategy']}")
    if axes_names:
        _tradeoff_panel(axes[0][1], run, trials, *axes_names)
    fig.tight_layout()
    return fig


def _progress_panel(ax, trials: list[Trial], objectives: dict[str, str], title: str) -> None:
    from matplotlib.ticker import MaxNLocator

    if not objectives:
        ax.set_title(f"{title}: no objectives")
        return
    name, mode = next(iter(objectives.items()))
    evaluated = [t for t in trials if t.cached_from is None]
    values = [t.result.objectives[name] for t in evaluated if t.result and t.result.ok and name in t.result.objectives]
    factor, label = axis_scale(name, values)
    sides = sorted({t.genome["side"] for t in evaluated if isinstance(t.genome, dict) and "side" in t.genome})
    if sides:  # co-evolution: each side is scored against its own partner and round, so no running best
        for side in sides:
            pts = [(i, t.result.objectives[name]) for i, t in enumerate(evaluated, 1)
                   if isinstance(t.genome, dict) and t.genome.get("side") == side
                   and t.result and t.result.ok and name in t.result.objectives]
            ax.plot([p[0] for p in pts], [factor * p[1] for p in pts], ".", label=f"generator {side}")
        ax.legend(fontsize=8)
        ax.set_ylabel(f"{label} of each candidate" + (" (lower is better)" if mode == "min" else ""))
        ax.set_title(f"{title}: {NAMES.get(name, name)} by side (scored against the other side's best)", fontsize=9)
    else:
        curve = best_so_far(trials, objectives)
        if curve:
            xs = [c[0] for c in curve] + [len(evaluated)]
            ys = [factor * c[1] for c in curve] + [factor * curve[-1][1]]
            ax.step(xs, ys, where="post", label=f"best {NAMES.get(name, name)} so far")
        ax.set_ylabel(f"best {label}" + (" (lower is better)" if mode == "min" else " (higher is better)"))
        ax.set_title(f"{title}: best so far", fontsize=9)
    ax.set_xlabel("evaluated candidates")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _tradeoff_panel(ax, run: RunView, trials: list[Trial], quality: str, cost: str) -> None:
    objectives = run.objectives
    ok = tradeoff_points(trials, quality, cost)
    budget = size_budget(run)
    budget = budget if budget and budget["measure"] == cost else None
    xs = [t.result.objectives[cost] for t in ok]
    ys = [t.result.objectives[quality] for t in ok]
    fx, xlabel = axis_scale(cost, xs + ([budget["limit"], budget["reference"] or 0.0] if budget else []))
    fy, ylabel = axis_scale(quality, ys)
    ax.scatter([fx * x for x in xs], [fy * y for y in ys], s=12, alpha=0.5, label="evaluated candidates")
    idx = pareto_front(list(zip(ys, xs)), (objectives[quality], objectives[cost]))
    front = sorted(((xs[i], ys[i]) for i in idx))
    ax.plot([fx * p[0] for p in front], [fy * p[1] for p in front], "r.-", label="Pareto front")
    unpruned = [t for t in ok if is_unpruned(t.genome)]
    if unpruned:
        t = unpruned[0]
        ax.plot([fx * t.result.objectives[cost]], [fy * t.result.objectives[quality]], "k*", markersize=13,
                label="unpruned network")
    elif budget and budget["reference"]:
        ax.axvline(fx * budget["reference"], color="k", linestyle=":",
                   label=f"unpruned network ({human(budget['reference'])})")
    if budget:
        ax.axvline(fx * budget["limit"], color="tab:green", linestyle="--",
                   label=f"size target ({NAMES.get(cost, cost)} <= {human(budget['limit'])})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{NAMES.get(quality, quality)} against {NAMES.get(cost, cost)} ({len(ok)} candidates)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
