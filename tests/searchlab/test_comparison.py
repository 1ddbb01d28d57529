"""`searchlab compare`: strategies x seeds on the bundled NAS-Bench-201 table, end to end, resumed after an
interruption, and refused in one line when the input is wrong."""

import json

import pytest

import searchlab
from searchlab import cli
from searchlab.engine import comparison
from searchlab.errors import ConfigError
from searchlab.store.run_view import RunView

STRATEGIES = ["random", "evolution:population=4,sample_size=2"]


def _tiny(out, **kwargs):
    return searchlab.compare("nasbench201", STRATEGIES, out=out, seeds=2, max_evals=8, jobs=1, **kwargs)


def _trials(folder):
    with RunView.open(folder) as run:
        return [t.to_json() for t in run.trials()]


def test_a_tiny_comparison_end_to_end(tmp_path):
    summary = _tiny(tmp_path / "cmp", baseline="random")
    out = tmp_path / "cmp"
    assert [row["strategy"] for row in summary["strategies"]] == STRATEGIES
    assert summary["cells"] == 15625 and summary["baseline"] == "random"
    for run in summary["runs"]:  # each an ordinary run, scored against the whole table
        with RunView.open(run["run"]) as view:
            assert view.config["strategy"] == run["strategy"].split(":")[0]
            assert view.budget_used()["max_evals"] == 8
            best = view.best()
        cell = searchlab.nasbench201_query(arch=best.genome if isinstance(best.genome, str) else None) \
            if isinstance(best.genome, str) else None
        assert run["best_accuracy"] == best.result.objectives["accuracy"]
        if cell is not None:
            assert run["rank"] == cell["rank_by_test_accuracy"]
        assert len(run["regret"]) == 8 and run["regret"] == sorted(run["regret"], reverse=True)
        assert run["regret"][-1] == pytest.approx(summary["table_best"] - run["best_accuracy"])
    evo = summary["strategies"][1]
    pairs = {(r["strategy"], r["seed"]): r["best_accuracy"] for r in summary["runs"]}
    assert evo["wins"] == sum(pairs[(STRATEGIES[1], s)] > pairs[("random", s)] for s in (0, 1))
    assert evo["wins"] + evo["ties"] + evo["losses"] == 2
    assert (out / "regret.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "summary.md").read_text()
    assert "wins vs random" in table and STRATEGIES[1] in table
    assert json.loads((out / "summary.json").read_text()) == summary
    assert json.loads((out / "comparison.json").read_text())["strategies"] == STRATEGIES


def test_an_interrupted_comparison_resumes_the_unfinished_runs_and_reuses_the_finished(tmp_path, monkeypatch):
    reference = _tiny(tmp_path / "ref", plot=False)
    from searchlab.engine import runner

    calls = []
    real = comparison.run_one

    def interrupted_third(space, spec, seed, max_evals, folder):
        calls.append(folder)
        if len(calls) == 3:  # the third run stops after 3 of its 8 queries, as a kill leaves it
            name, values = comparison.parse_strategy(spec)
            from searchlab.engine import run_config
            run_config.resolve(space, {**values, "seed": seed, "max_evals": max_evals}, strategy=name).create(folder)
            runner.run(folder, budget=runner.Budget(max_evals=3))
            raise KeyboardInterrupt
        return real(space, spec, seed, max_evals, folder)

    monkeypatch.setattr(comparison, "run_one", interrupted_third)
    with pytest.raises(KeyboardInterrupt):
        _tiny(tmp_path / "cmp", plot=False)
    finished = {folder: _trials(folder) for folder in calls[:2]}
    assert len(_trials(calls[2])) == 3
    monkeypatch.setattr(comparison, "run_one", real)
    resumed = []
    monkeypatch.setattr(comparison, "run_one", lambda *a: resumed.append(a[-1]) or real(*a))
    assert cli.main(["compare", "--out", str(tmp_path / "cmp"), "--no-plot", "--quiet", "--jobs", "1"]) == 0
    assert resumed[0] == calls[2] and len(resumed) == 2  # the two finished runs were not touched again
    assert {folder: _trials(folder) for folder in calls[:2]} == finished
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    strip = lambda s: [{k: v for k, v in r.items() if k != "run"} for r in s["runs"]]  # noqa: E731
    assert strip(summary) == strip(reference) and summary["strategies"] == reference["strategies"]


@pytest.mark.slow
def test_parallel_jobs_give_the_same_comparison(tmp_path):
    serial = _tiny(tmp_path / "serial", plot=False)
    parallel = searchlab.compare("nasbench201", STRATEGIES, out=tmp_path / "par", seeds=2, max_evals=8, jobs=2,
                                 plot=False)
    assert parallel["strategies"] == serial["strategies"]


@pytest.mark.parametrize("argv, message", [
    (["compare", "cyclegan", "--strategies", "random", "--max-evals", "5"], "table space"),
    (["compare", "nasbench201", "--strategies", "nonesuch", "--max-evals", "5"], "nonesuch"),
    (["compare", "nasbench201", "--strategies", "evolution:popsize=3", "--max-evals", "5"],
     "unknown option(s) popsize; evolution takes population, sample_size"),
    (["compare", "nasbench201", "--strategies", "random:seed=3", "--max-evals", "5"], "random takes no options"),
    (["compare", "nasbench201", "--strategies", "evolution:population", "--max-evals", "5"], "option=value"),
    (["compare", "nasbench201", "--strategies", "random", "--max-evals", "5", "--baseline", "evolution"], "baseline"),
    (["compare", "nasbench201", "--strategies", "random"], "--max-evals"),
    (["compare", "nasbench201", "--strategies", "random", "--max-evals", "0"], "must be positive"),
    (["compare"], "--out"),
    (["compare", "--seeds", "3"], "name its space and strategies again"),
])
def test_bad_input_is_one_line_and_stores_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "cmp"
    assert cli.main([*argv, "--out", str(out)] if argv != ["compare"] else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert not out.exists()


def test_a_comparison_keeps_its_space_and_budget_and_needs_a_plan_to_resume(tmp_path, capsys):
    out = tmp_path / "cmp"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        searchlab.compare("nasbench201", ["random"], out=tmp_path / "file", seeds=1, max_evals=3)
    with pytest.raises(ConfigError, match="holds no comparison"):
        searchlab.compare(out=out)
    searchlab.compare("nasbench201", ["random"], out=out, seeds=1, max_evals=3, jobs=1, plot=False)
    before = _trials(out / "random" / "seed-0")
    assert cli.main(["compare", "nasbench201", "--strategies", "random", "--max-evals", "4", "--out", str(out)]) == 2
    assert "same space and budget" in capsys.readouterr().err
    (out / "comparison.json").write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        searchlab.compare(out=out)
    assert _trials(out / "random" / "seed-0") == before


def test_ctrl_c_stops_the_comparison_not_just_the_run_it_reaches(tmp_path, monkeypatch):
    from searchlab.engine import runner

    real, seen = runner.run, []

    def interrupt_second(folder, **kwargs):
        seen.append(folder)
        if len(seen) == 2:  # what the run loop returns when SIGINT reaches it: the run stored, resumable
            return runner.Outcome("interrupted", 0, 0, None)
        return real(folder, **kwargs)

    monkeypatch.setattr(runner, "run", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        _tiny(tmp_path / "cmp", plot=False)
    assert len(seen) == 2 and not (tmp_path / "cmp" / "summary.json").exists()


def test_a_baseline_named_without_its_options_is_its_one_strategy():
    plan = comparison.make_plan("nasbench201", STRATEGIES, [0], 8, "evolution")
    assert plan.baseline == "evolution:population=4,sample_size=2"
    with pytest.raises(ConfigError, match="not among the strategies"):
        comparison.make_plan("nasbench201", [*STRATEGIES, "evolution:population=6,sample_size=2"], [0], 8, "evolution")
