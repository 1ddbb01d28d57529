"""The Python API: the worked example of docs/python.md runs as written; errors are SearchlabErrors."""

import re
from pathlib import Path

import pytest

import searchlab
from searchlab.errors import ConfigError, RunStoreError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "best cell" in out and "rank" in out
    assert (tmp_path / "runs" / "py-evo" / "run.sqlite").is_file()
    assert (tmp_path / "preds" / "py-renas").is_dir()


def test_builtins_load_without_the_command_line_and_errors_are_one_line(tmp_path):
    run = searchlab.search("nasbench101", strategy="random", max_evals=5, seed=1, run=tmp_path / "r")
    assert len(run.trials()) == 5 and run.best()["objectives"]["accuracy"] > 0.5
    assert run.status()["failures"] == []
    with pytest.raises(ConfigError, match="unknown option"):
        searchlab.search("nasbench101", popsize=3, run=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(RunStoreError):
        searchlab.open_run(tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="renas_epochs"):
        searchlab.train_predictor("renas", tmp_path / "p", labels=10, epochs=3)


def test_trials_as_a_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    run = searchlab.search("nasbench101", strategy="random", max_evals=4, seed=2, run=tmp_path / "r")
    frame = run.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == [1, 2, 3, 4]
    assert {"accuracy", "flops", "state", "cost_seconds"} <= set(frame.columns)


@pytest.mark.parametrize("reason", ["finished", "max_evals", "max_time", "max_epochs", "max_cost", "exhausted",
                                    "interrupted"])
def test_the_command_line_and_python_finalize_on_the_same_stop_reasons(tmp_path, monkeypatch, capsys, reason):
    from searchlab import cli
    from searchlab.engine import runner

    run = tmp_path / "r"
    searchlab.search("nasbench101", strategy="random", max_evals=3, seed=1, run=run, finalize=False)
    from searchlab.store.run_store import RunStore
    with RunStore.open(run) as store:
        best = runner.best_trial(store.trials(), store.config["objectives"]).to_json()
    monkeypatch.setattr(runner, "run", lambda *a, **k: runner.Outcome(reason, 3, 3, best))
    finalized = []
    monkeypatch.setattr(runner, "finalize", lambda *a, **k: finalized.append("x") or {})
    searchlab.resume(run)
    from_python = len(finalized)
    cli.main(["resume", str(run), "--quiet"])
    capsys.readouterr()
    assert len(finalized) - from_python == from_python == (0 if reason == "interrupted" else 1)
