"""The Python API: the worked example of docs/python.md runs as written; errors are SearchlabErrors."""

import re
from pathlib import Path

import pytest

import searchlab
from searchlab.errors import ConfigError, RunStoreError, SearchlabError

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
    assert "genome" not in frame.columns  # flattened: one column per list position / dict key, dotted
    trials = run.trials()
    for t, (_, row) in zip(trials, frame.iterrows()):
        assert [row[f"genome.ops.{i}"] for i in range(len(t["genome"]["ops"]))] == t["genome"]["ops"]
        assert row["genome.matrix.0.1"] == t["genome"]["matrix"][0][1]
    assert str(frame["datetime_start"].dtype) == "datetime64[ns, UTC]"
    assert (frame["duration"] == frame["datetime_complete"] - frame["datetime_start"]).all()
    assert (frame["duration"] >= pd.Timedelta(0)).all()


def test_best_trial_params_and_the_pareto_front(tmp_path):
    from searchlab.objectives import sign

    run = searchlab.search("nasbench101", strategy="random", max_evals=12, seed=3, run=tmp_path / "r")
    done = [t for t in run.trials() if t["state"] == "done" and t["cached_from"] is None]
    assert run.best_trial == run.best() == max(done, key=lambda t: (t["objectives"]["accuracy"], -t["id"]))
    assert run.best_params == run.best_trial["genome"]
    objectives = run.objectives
    assert list(objectives)[0] == "accuracy" and len(objectives) >= 2

    def dominates(a, b):
        pairs = [(sign(m) * a["objectives"][n], sign(m) * b["objectives"][n]) for n, m in objectives.items()]
        return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)

    front = run.best_trials
    ids = {t["id"] for t in front}
    assert run.best_trial["id"] in ids and [t["id"] for t in front] == sorted(ids)
    for t in done:  # on the front exactly when no trial dominates it
        assert (t["id"] in ids) == (not any(dominates(o, t) for o in done))
    empty = searchlab.open_run(tmp_path / "r")
    assert empty.best_trials and searchlab.open_run(tmp_path / "r").best_params is not None


def test_nasbench201_query_and_tab_completion():
    assert {"search", "resume", "open_run", "Run", "nasbench101_query", "nasbench201_query", "train_predictor",
            "predict", "compare"} <= set(dir(searchlab))
    best = searchlab.nasbench201_query(index=6111)
    assert best["rank_by_test_accuracy"] == 1 and best["test_accuracy"] == pytest.approx(0.943733, abs=1e-5)
    assert searchlab.nasbench201_query(arch=best["arch"])["index"] == 6111
    for kwargs, message in [({}, "exactly one of arch"), ({"index": 15625}, "out of range"), ({"index": "7"}, "int"),
                            ({"arch": "|bogus~0|"}, "bogus")]:
        with pytest.raises(SearchlabError, match=message):
            searchlab.nasbench201_query(**kwargs)


def _no_flags(message: str) -> bool:
    """No command-line flag outside a quoted shell command."""
    return not re.search(r"(?<![\w-])--[a-z]", "".join(message.split("`")[::2]))


@pytest.mark.parametrize("call, message", [
    (lambda tmp: searchlab.search("nasbench101", run=123), "run must be a folder path"),
    (lambda tmp: searchlab.resume(None), "run must be a folder path"),
    (lambda tmp: searchlab.open_run(42), "run must be a folder path"),
    (lambda tmp: searchlab.open_run(tmp / "missing"), "does not exist"),
    (lambda tmp: searchlab.search("nasbench101", workers="2", run=tmp / "x"), "workers must be a whole number"),
    (lambda tmp: searchlab.search("nasbench101", strategy="evolution", population="20", run=tmp / "x"),
     "population should be int"),
    (lambda tmp: searchlab.search("nasbench101", seed=-1, run=tmp / "x"), "seed"),
    (lambda tmp: searchlab.search("nasbench101", max_evals=0, run=tmp / "x"), "max_evals must be positive"),
    (lambda tmp: searchlab.search("nasbench101", backend="cloud", run=tmp / "x"), "backend"),
    (lambda tmp: searchlab.search("nasbench101", workers=2, run=tmp / "x"), "workers"),
    (lambda tmp: searchlab.search("nasbench101", popsize=3, run=tmp / "x"), "it takes: .*population"),
    (lambda tmp: searchlab.resume(tmp / "missing", max_evals="many"), "does not exist"),
    (lambda tmp: searchlab.nasbench101_query(), "exactly one of hash"),
    (lambda tmp: searchlab.nasbench101_query(spec="{not json"), "spec"),
    (lambda tmp: searchlab.nasbench101_query(hash="00005c142e6f48ac74fdcf73e3439874", epochs=7), "epochs"),
    (lambda tmp: searchlab.predict(tmp / "nopredictor"), "say which cells"),
    (lambda tmp: searchlab.predict(tmp / "nopredictor", top="3"), "top must be an int"),
    (lambda tmp: searchlab.compare("nasbench201", ["random"], out=tmp / "c"), "max_evals"),
    (lambda tmp: searchlab.compare("nasbench201", ["random"], out=tmp / "c", max_evals=-2), "max_evals must be"),
])
def test_bad_arguments_raise_searchlab_errors_in_python_terms(tmp_path, call, message):
    with pytest.raises(SearchlabError, match=message) as info:
        call(tmp_path)
    assert _no_flags(str(info.value)), str(info.value)
    assert not (tmp_path / "x").exists()


def test_numbers_given_as_text_are_refused_alike_and_states_are_checked(tmp_path):
    for options, message in [({"population": "20"}, "population should be int, got '20'"),
                             ({"workers": "2"}, "workers must be a whole number"),
                             ({"max_evals": "5"}, "max_evals must be a number"),
                             ({"sample_size": True}, "sample_size should be int")]:
        with pytest.raises(ConfigError, match=message):
            searchlab.search("nasbench101", strategy="evolution", run=tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()
    run = searchlab.search("nasbench101", strategy="evolution", population=4, sample_size=2, max_evals=5,
                           max_time="10m", seed=1, run=tmp_path / "r")
    assert run.config["budget"]["max_time"] == 600 and run.config["strategy_config"]["population"] == 4
    assert [t["state"] for t in run.trials(state="done")] == ["done"] * len(run.trials(state="done"))
    with pytest.raises(ConfigError, match="state must be one of asked, running, done, failed, cached"):
        run.trials(state="bogus")
    with pytest.raises(RunStoreError, match="already holds a run") as info:
        searchlab.search("nasbench101", run=tmp_path / "r")
    assert "searchlab.resume(" in str(info.value) and _no_flags(str(info.value))
    with pytest.raises(ConfigError, match="max_evals must be a number"):
        searchlab.resume(tmp_path / "r", max_evals="6")
    assert len(searchlab.resume(tmp_path / "r", max_evals=6).trials()) >= 6


def test_a_config_file_takes_numbers_as_numbers(tmp_path, capsys):
    from searchlab import cli

    config = tmp_path / "c.json"
    config.write_text('{"population": "20"}')
    assert cli.main(["search", "nasbench101", "--strategy", "evolution", "--config", str(config),
                     "--run", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: config file {config}: population should be int, got '20'"
    assert not (tmp_path / "r").exists()


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
