"""The regret-vs-queries plot of a comparison: per strategy, the median over seeds of how far the best cell
found so far lies below the table's best, with the band between the 25th and 75th percentile."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def regret_curves(summary: dict) -> dict[str, np.ndarray]:
    """{strategy: array [seeds, max_evals]} of regret after each query (a run that stopped early keeps
    its last value)."""
    n = summary["max_evals"]
    curves: dict[str, list] = {row["strategy"]: [] for row in summary["strategies"]}
    for run in summary["runs"]:
        regret = run["regret"]
        if regret:
            curves[run["strategy"]].append(regret + [regret[-1]] * (n - len(regret)))
    return {k: np.asarray(v, np.float64) for k, v in curves.items() if v}


def plot_regret(summary: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from searchlab import io

    curves = regret_curves(summary)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, values in curves.items():
        queries = np.arange(1, values.shape[1] + 1)
        points = 100.0 * values  # accuracy points below the table's best
        median = np.median(points, axis=0)
        low, high = np.percentile(points, [25, 75], axis=0)
        (line,) = ax.plot(queries, median, label=f"{name} ({len(values)} seeds)", linewidth=1.8)
        ax.fill_between(queries, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_yscale("symlog", linthresh=0.01)  # logarithmic above 0.01 points, linear below: regret 0 stays on the axis
    ax.set_ylim(bottom=0)
    ax.set_xlim(1, summary["max_evals"])
    ax.set_xlabel("queries (unique cells evaluated)")
    ax.set_ylabel("regret: test accuracy points below the table's best")
    ax.set_title(f"{summary['space']}: {len(summary['seeds'])} seeds, table best "
                 f"{100 * summary['table_best']:.2f} %; line: median, band: 25th-75th percentile", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    io.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
