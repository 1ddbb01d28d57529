"""`searchlab predictor train|eval` and `searchlab predict`, in process, on the bundled table."""

import json

import pytest

from searchlab.cli import main

HASH = "00005c142e6f48ac74fdcf73e3439874"


@pytest.fixture(scope="module", autouse=True)
def _test_cache(shared_cache):
    """Every fixture and test here uses the session's cache folder, never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHLAB_CACHE_DIR", str(shared_cache))
        yield


@pytest.fixture(scope="module")
def renas_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pred") / "renas"
    assert main(["predictor", "train", "--kind", "renas", "--labels", "120", "--seed", "2",
                 "--renas-epochs", "15", "--out", str(out), "--json"]) == 0
    return out


def test_train_writes_a_predictor(renas_dir):
    info = json.loads((renas_dir / "predictor.json").read_text())
    assert info["kind"] == "renas" and info["meta"]["labels"] == 120 and len(info["meta"]["train_rows"]) == 120
    assert info["config"]["renas_epochs"] == 15
    assert (renas_dir / "weights.safetensors").stat().st_size > 100_000


def test_eval_reports_ranking_and_writes_a_plot(renas_dir, capsys, tmp_path):
    plot = tmp_path / "s.png"
    assert main(["predictor", "eval", str(renas_dir), "--test", "800", "--plot", str(plot), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test_cells"] == 800 and out["kind"] == "renas"
    assert 0.1 < out["kendall_tau"] <= 1 and 0 <= out["precision_at_10"] <= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_scatter_shows_every_cell_beside_the_line_of_perfect_prediction(renas_dir):
    """Real test accuracies (a sample with the table's failed cells near 10%) against the predictor's: the
    first panel holds every point, both panels draw y = x, the zoom says how many cells lie outside it."""
    import matplotlib.pyplot as plt
    import numpy as np
    from searchlab.predictors.base import Predictor
    from searchlab.predictors.commands import scatter_figure
    from searchlab.predictors.table import load_predictor_table

    table = load_predictor_table()
    accuracy = table.target("test_accuracy")
    rows = np.concatenate([np.random.default_rng(0).choice(len(table), 1500, replace=False),
                           np.flatnonzero(accuracy < 0.2)[:20]])
    truth, predicted = accuracy[rows], Predictor.load(renas_dir).predict(table.cells.take(rows))
    fig = scatter_figure(truth, predicted, "renas", "test_accuracy")
    plt.close(fig)
    every, zoom = fig.axes
    for ax in (every, zoom):
        assert ax.get_xlabel() == "true test accuracy (%)" and ax.get_ylabel() == "predicted test accuracy (%)"
        line = next(line for line in ax.get_lines() if line.get_label() == "y = x (perfect prediction)")
        assert list(line.get_xdata()) == list(line.get_ydata())
    (x0, x1), (y0, y1) = every.get_xlim(), every.get_ylim()
    assert x0 <= 100 * truth.min() and x1 >= 100 * truth.max() and 100 * truth.min() < 20  # nothing clipped
    assert y0 <= 100 * predicted.min() and y1 >= 100 * predicted.max()
    (lo, hi), x, y = zoom.get_xlim(), 100 * truth, 100 * predicted
    outside = int(((x < lo) | (x > hi) | (y < lo) | (y > hi)).sum())
    assert outside >= 20 and f"{outside:,} of {len(rows):,} cells outside" in zoom.get_title()


def test_predict_keeps_input_order(renas_dir, capsys, tmp_path):
    spec = {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps([spec, HASH, spec]))
    assert main(["predict", str(renas_dir), "--file", str(cells), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["hash"] for r in rows][1] == HASH and rows[0] == rows[2] and len(rows) == 3
    assert main(["predict", str(renas_dir), "--hash", HASH, "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert single == [rows[1]]
    assert main(["predict", str(renas_dir), "--spec", json.dumps(spec)]) == 0
    assert rows[0]["hash"] in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["predict", "{missing}", "--hash", HASH], "does not exist"),
    (["predict", "{dir}", "--hash", "xyz"], "not a NAS-Bench-101 hash"),
    (["predict", "{dir}", "--spec", '{"matrix": [[0,1],[1,0]], "ops": ["input","output"]}'], "upper triangular"),
    (["predict", "{dir}", "--file", "{missing}"], "does not exist"),
    (["predictor", "train", "--kind", "renas", "--target", "speed", "--out", "{missing}"], "unknown target"),
    (["predictor", "train", "--kind", "renas", "--target", "params", "--out", "{missing}"],
     "no params values; choose --target test_accuracy or flops"),  # the bundled table has no params
    (["predictor", "train", "--kind", "renas", "--labels", "1", "--out", "{missing}"], "--labels"),
    (["predictor", "eval", "{dir}", "--test", "lots"], "--test"),
])
def test_bad_input_is_one_line_exit_2(renas_dir, tmp_path, capsys, argv, message):
    argv = [a.replace("{dir}", str(renas_dir)).replace("{missing}", str(tmp_path / "nope")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_foreign_or_corrupt_predictor_dirs(renas_dir, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "predictor.json").write_text(json.dumps({"format": "searchlab-predictor", "version": 1, "kind": "xgb"}))
    assert main(["predict", str(other), "--hash", HASH]) == 2
    assert "unknown predictor 'xgb'" in capsys.readouterr().err
    (other / "predictor.json").write_text("{not json")
    assert main(["predict", str(other), "--hash", HASH]) == 2
    assert "corrupt" in capsys.readouterr().err
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert main(["predictor", "eval", str(run_dir)]) == 2
    assert "not a predictor directory" in capsys.readouterr().err
    before = (renas_dir / "predictor.json").read_text()
    assert main(["predict", str(renas_dir), "--hash", "0" * 32]) == 2  # valid hash form, not in the table
    assert (renas_dir / "predictor.json").read_text() == before


def test_search_with_the_renas_strategy_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["search", "nasbench101", "--strategy", "renas", "--initial", "20", "--top-k", "5", "--rounds", "2",
            "--pool", "1500", "--renas-epochs", "5", "--max-evals", "25", "--seed", "4", "--run", str(run), "--quiet"]
    assert main(argv) == 0
    assert main(["resume", str(run), "--max-evals", "30", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["strategy"] == "renas" and status["trials"]["done"] == 30
    # 20 random cells, then two rounds of 5 predicted-best cells: the strategy is finished at 30
    assert status["budget"]["max_evals"]["used"] == 30


def test_search_with_the_consensus_strategy(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["search", "nasbench101", "--strategy", "consensus", "--initial", "20", "--top-k", "5", "--pool", "1500",
            "--renas-epochs", "5", "--unlabeled", "200", "--gcn-epochs", "20", "--max-evals", "25", "--seed", "2",
            "--run", str(run), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["strategy"] == "consensus" and status["trials"]["done"] == 25
    assert main(["search", "nasbench101", "--strategy", "consensus", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--strategy consensus --max-evals 434" in out and "--renas-epochs" in out and "--knn" in out


def test_search_warns_when_the_budget_ends_before_the_first_fit(tmp_path, capsys):
    argv = ["search", "nasbench101", "--strategy", "renas", "--initial", "20", "--pool", "1500",
            "--max-evals", "3", "--run", str(tmp_path / "run")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "note: --max-evals 3 stops before the predictor is fitted" in err
    assert main(["search", "nasbench101", "--strategy", "renas", "--help"]) == 0
    assert "--strategy renas --max-evals 434" in capsys.readouterr().out  # the example runs the whole plan
