"""The worked example of docs/extending.md: a GA-based search as a separate plug-in package, under 100
lines, loaded through SEARCHLAB_PLUGINS and run end to end on the bundled NAS-Bench-101 table."""

import json
from pathlib import Path

import pytest

from searchlab import cli
from searchlab.store.run_store import RunStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cell_ga"


@pytest.fixture
def cell_ga(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("SEARCHLAB_PLUGINS", "plugins_for_tests,cell_ga")


def trials(run):
    with RunStore.open(run) as store:
        return [(t.key, t.result.objectives["accuracy"]) for t in store.trials()]


def test_the_example_is_short():
    assert len((EXAMPLE / "cell_ga.py").read_text().splitlines()) < 100


@pytest.mark.slow
def test_example_search_runs_evolves_and_resumes_identically(cell_ga, tmp_path, capsys):
    common = ["search", "nasbench101", "--strategy", "cell-ga", "--population", "10", "--generations", "6",
              "--seed", "3", "--quiet", "--json", "--no-finalize"]
    assert cli.main([*common, "--run", str(tmp_path / "whole")]) == 0
    assert json.loads(capsys.readouterr().out)["stopped_by"] == "finished"
    whole = trials(tmp_path / "whole")
    assert len(whole) == 10 + 5 * 8  # the random first generation, then 8 children a generation (2 elites)
    first, last = [a for _, a in whole[:10]], [a for _, a in whole[-8:]]
    import statistics
    assert statistics.median(last) > statistics.median(first)  # selection works: the last children beat random cells
    assert cli.main([*common, "--max-evals", "23", "--run", str(tmp_path / "split")]) == 0
    assert cli.main(["resume", str(tmp_path / "split"), "--max-evals", "1000", "--quiet", "--no-finalize"]) == 0
    assert trials(tmp_path / "split") == whole
    capsys.readouterr()
    assert cli.main(["search", "nasbench101", "--strategy", "cell-ga", "--population", "5", "--elite", "5", "--run",
                     str(tmp_path / "bad")]) == 2
    assert "--elite must be between 0" in capsys.readouterr().err


def test_a_run_names_the_plug_in_to_trust_when_resumed_in_a_fresh_shell(cell_ga, tmp_path, capsys):
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    assert cli.main(["search", "nasbench101", "--strategy", "cell-ga", "--population", "6", "--generations", "3",
                     "--max-evals", "8", "--seed", "1", "--quiet", "--no-finalize", "--run", str(run)]) == 0
    with RunStore.open(run) as store:
        assert "cell_ga" in store.config["plugins"]  # the module behind the strategy's name
    fresh = {k: v for k, v in os.environ.items() if k != "SEARCHLAB_PLUGINS"}
    resume = [sys.executable, "-m", "searchlab.cli", "resume", str(run), "--max-evals", "100", "--quiet", "--no-finalize"]
    out = subprocess.run(resume, env=fresh, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "SEARCHLAB_PLUGINS=cell_ga" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    trusted = {**fresh, "SEARCHLAB_PLUGINS": "cell_ga",
               "PYTHONPATH": os.pathsep.join([str(EXAMPLE), fresh.get("PYTHONPATH", "")])}
    out = subprocess.run(resume, env=trusted, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(trials(run)) == 6 + 4 + 4


WIDTHS = Path(__file__).resolve().parents[1] / "examples" / "width_ga"


@pytest.mark.slow
def test_the_compression_style_example_meets_its_budget_finalizes_and_resumes(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(WIDTHS))
    monkeypatch.setenv("SEARCHLAB_PLUGINS", "plugins_for_tests,width_ga")
    mnist = f"mnist:{Path(__file__).resolve().parent / 'data' / 'mnist_mini'}"
    common = ["search", "widths", "--data", mnist, "--max-params", "0.4", "--population", "4", "--generations", "3",
              "--epochs", "0.3", "--seed", "2", "--quiet", "--json"]
    assert cli.main([*common, "--run", str(tmp_path / "whole")]) == 0
    final = json.loads(capsys.readouterr().out)["final"]
    with RunStore.open(tmp_path / "whole") as store:
        params = [t.result.objectives["params"] for t in store.trials() if t.result and t.result.ok]
        whole = [(t.key, t.result.objectives) for t in store.trials()]
    widest = 19_338.0  # three layers of 32 filters on 1-channel images, 10 classes
    assert params and max(params) <= 0.4 * widest and final["params"] <= 0.4 * widest
    assert (tmp_path / "whole" / "best_widths.safetensors").is_file() and 0 <= final["test_accuracy"] <= 1
    assert cli.main([*common, "--max-evals", "5", "--no-finalize", "--run", str(tmp_path / "split")]) == 0
    assert cli.main(["resume", str(tmp_path / "split"), "--max-evals", "100", "--quiet", "--no-finalize"]) == 0
    with RunStore.open(tmp_path / "split") as store:
        assert [(t.key, t.result.objectives) for t in store.trials()] == whole


def test_the_compression_search_code_is_short():
    lines = (WIDTHS / "width_ga.py").read_text().splitlines()
    search = lines[next(i for i, line in enumerate(lines) if line.startswith("class WidthGA")):]
    assert len(search) <= 100  # strategy, evaluator, final step and their registration
