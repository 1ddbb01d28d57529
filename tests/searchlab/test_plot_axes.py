"""Which objectives a report's trade-off plot shows, and in what units: a quality against a cost, never a
search's own score (prune fitness) against anything."""

import matplotlib.pyplot as plt
import pytest

import searchlab
from searchlab.objectives import axis_scale, tradeoff_axes
from searchlab.output.report import plot_figure
from searchlab.store.run_view import RunView


@pytest.mark.parametrize("objectives, budget, axes", [
    ({"fitness": "max", "accuracy": "max", "flops": "min", "params": "min"}, None, ("accuracy", "flops")),  # prune
    ({"fitness": "max", "accuracy": "max", "flops": "min", "params": "min"}, "params", ("accuracy", "params")),
    ({"accuracy": "max", "flops_bops64": "min", "cost_ratio": "min", "size_bits": "min", "params": "min"},
     "flops_bops64", ("accuracy", "flops_bops64")),                                                    # binary
    ({"fitness": "max", "params": "min", "resemble": "min", "cycle": "min", "psnr": "max"}, "params",
     ("psnr", "params")),                                                                              # CycleGAN
    ({"psnr": "max", "params": "min", "mult_adds": "min"}, None, ("psnr", "params")),                  # SR
    ({"accuracy": "max"}, None, None),                                                                 # nothing to trade
])
def test_the_tradeoff_is_quality_against_cost(objectives, budget, axes):
    assert tradeoff_axes(objectives, budget) == axes


def test_axis_units():
    assert axis_scale("accuracy", [0.5, 0.93]) == (100.0, "accuracy (%)")
    assert axis_scale("accuracy", [50.0, 93.0]) == (1.0, "accuracy (%)")   # NAS-Bench-201 stores percentages
    assert axis_scale("flops", [833_040.0]) == (1e-3, "FLOPs (k)")
    assert axis_scale("params", [11_388_675.0]) == (1e-6, "parameters (M)")
    assert axis_scale("psnr", [19.0]) == (1.0, "PSNR (dB)")


def test_a_nasbench101_report_plots_accuracy_in_percent_against_flops(tmp_path):
    run = tmp_path / "nb"
    searchlab.search("nasbench101", strategy="random", max_evals=12, seed=5, run=run)
    with RunView.open(run) as view:
        fig = plot_figure(view)
        trials = [t for t in view.trials() if t.result and t.result.ok]
    plt.close(fig)
    progress, tradeoff = fig.axes
    assert progress.get_ylabel() == "best accuracy (%) (higher is better)"
    assert tradeoff.get_xlabel() in ("FLOPs (M)", "FLOPs (G)") and tradeoff.get_ylabel() == "accuracy (%)"
    points = tradeoff.collections[0].get_offsets()
    assert len(points) == len(trials) == 12
    assert sorted(points[:, 1]) == pytest.approx(sorted(100 * t.result.objectives["accuracy"] for t in trials))
