"""The run loop: determinism, resume from any stored state, repeated keys, budgets, backends."""

import json
import sqlite3

import pytest

import plugins_for_tests  # noqa: F401  (registers the bit-string space)
from searchlab.evolvers import aging_evolution, random_search  # noqa: F401
from searchlab.engine import runner
from searchlab.errors import ConfigError, RunStoreError
from searchlab.store.run_store import RunStore


def make_run(tmp_path, name="run", strategy="evolution", max_evals=40, backend="local", workers=1, seed=3, **kw):
    runner.create_run(tmp_path / name, space="bits", strategy=strategy, evaluator="weighted-ones",
                      space_config={"length": 12}, strategy_config={"population": 8, "sample_size": 3}
                      if strategy == "evolution" else {}, evaluator_config=kw.pop("evaluator_config", {}),
                      seed=seed, budget=runner.Budget(max_evals=max_evals, **kw), backend=backend,
                      workers=workers, device="cpu")
    return tmp_path / name


def comparable(result):
    """A result without its measured wall-clock seconds (the only part that may differ between runs)."""
    data = result.to_json()
    data["cost"].pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def trial_rows(run_dir):
    with RunStore.open(run_dir) as store:
        return [(t.id, t.key, t.state, t.cached_from, t.seed, comparable(t.result) if t.result else None)
                for t in store.trials()]


def test_same_seed_same_trials_and_budget_counts_unique(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b")
    out_a, out_b = runner.run(a), runner.run(b)
    assert out_a.reason == "max_evals" and out_a.evaluated == 40
    assert trial_rows(a) == trial_rows(b)
    rows = trial_rows(a)
    assert sum(1 for r in rows if r[3] is None) == 40          # unique evaluations == budget
    cached = [r for r in rows if r[3] is not None]
    assert cached, "a 12-bit space with evolution repeats keys; they must be answered from the store"
    by_id = {r[0]: r for r in rows}
    for r in cached:                                          # same objectives as the original, no cost
        original = json.loads(by_id[r[3]][5])
        assert json.loads(r[5])["objectives"] == original["objectives"] and json.loads(r[5])["cost"] == {}


def test_different_seed_differs(tmp_path):
    a, b = make_run(tmp_path, "c", seed=1), make_run(tmp_path, "d", seed=2)
    runner.run(a), runner.run(b)
    assert [r[1] for r in trial_rows(a)] != [r[1] for r in trial_rows(b)]


def test_resume_raises_budget_and_matches_uninterrupted(tmp_path):
    whole = make_run(tmp_path, "whole", max_evals=40)
    runner.run(whole)
    part = make_run(tmp_path, "part", max_evals=15)
    assert runner.run(part).reason == "max_evals"
    assert runner.run(part, budget=runner.Budget(max_evals=40)).evaluated == 40
    assert trial_rows(part) == trial_rows(whole)
    with RunStore.open(part) as store:
        assert store.config["budget"]["max_evals"] == 40


def test_resume_reevaluates_unfinished_trials(tmp_path):
    """Simulate a crash after trials were asked but before they were told."""
    whole = make_run(tmp_path, "whole", max_evals=30)
    runner.run(whole)
    part = make_run(tmp_path, "part", max_evals=30)
    runner.run(part, budget=runner.Budget(max_evals=12))
    conn = sqlite3.connect(part / "run.sqlite")
    with RunStore.open(part) as store:
        last = store.last_snapshot()
    # Roll the store back by hand to "trials asked, then killed": extra asked rows, no results.
    conn.execute("DELETE FROM snapshots WHERE told_through > ?", (last.told_through - 3,))
    told = conn.execute("SELECT MAX(told_through) FROM snapshots").fetchone()[0]
    conn.execute("UPDATE trials SET state='running', result=NULL, cost=NULL WHERE id > ?", (told,))
    conn.commit()
    conn.close()
    runner.run(part, budget=runner.Budget(max_evals=30))
    assert trial_rows(part) == trial_rows(whole)


def test_processes_backend_matches_local(tmp_path):
    local = make_run(tmp_path, "local", max_evals=24, workers=1)
    runner.run(local)
    procs = make_run(tmp_path, "procs", max_evals=24, backend="processes", workers=2)
    runner.run(procs)
    pool2 = make_run(tmp_path, "pool2", max_evals=24, backend="processes", workers=2)
    runner.run(pool2)
    assert trial_rows(procs) == trial_rows(pool2)               # reproducible for its seed with 2 workers
    # Random search asks independently of results, so any window gives the same candidates.
    r1 = make_run(tmp_path, "r1", strategy="random", max_evals=20)
    r2 = make_run(tmp_path, "r2", strategy="random", max_evals=20, backend="processes", workers=2)
    runner.run(r1), runner.run(r2)
    assert trial_rows(r1) == trial_rows(r2)


def test_other_budgets(tmp_path):
    run = make_run(tmp_path, "epochs", max_evals=None, max_epochs=7)
    out = runner.run(run)
    assert out.reason == "max_epochs" and out.told == 7
    run = make_run(tmp_path, "cost", max_evals=None, max_cost=50)
    assert runner.run(run).reason == "max_cost"
    run = make_run(tmp_path, "time", max_evals=None, max_time=0.3, evaluator_config={"sleep": 0.05})
    out = runner.run(run)
    assert out.reason == "max_time" and 2 <= out.told <= 8


def test_bad_budgets_and_names(tmp_path):
    with pytest.raises(ConfigError, match="--max-evals must be positive"):
        runner.Budget(max_evals=0)
    with pytest.raises(ConfigError, match="unknown strategy .*; choose one of: .*evolution"):
        runner.create_run(tmp_path / "x", space="bits", strategy="nope", evaluator="weighted-ones", space_config={},
                          strategy_config={}, evaluator_config={}, seed=0, budget=runner.Budget(max_evals=3))
    with pytest.raises(ConfigError, match="population"):
        runner.create_run(tmp_path / "y", space="bits", strategy="evolution", evaluator="weighted-ones",
                          space_config={}, strategy_config={"population": 1}, evaluator_config={}, seed=0,
                          budget=runner.Budget(max_evals=3))


def test_existing_run_is_not_overwritten(tmp_path):
    run = make_run(tmp_path, "r", max_evals=5)
    runner.run(run)
    before = (run / "run.sqlite").read_bytes()
    with pytest.raises(RunStoreError, match="already holds a run"):
        make_run(tmp_path, "r", max_evals=5)
    assert (run / "run.sqlite").read_bytes() == before


def test_a_run_folder_cannot_choose_which_modules_are_imported(tmp_path, monkeypatch, capsys):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "planted_module.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').write_text('yes')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    run_dir = make_run(tmp_path, max_evals=5)
    runner.run(run_dir)
    with RunStore.open(run_dir) as store:
        store.update_config(dict(store.config, plugins=["planted_module"]))
        before = trial_rows(run_dir)
    with pytest.raises(ConfigError, match="SEARCHLAB_PLUGINS=planted_module"):
        runner.run(run_dir, budget=runner.Budget(max_evals=10))
    from searchlab.cli import main
    assert main(["resume", str(run_dir), "--max-evals", "10"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not import modules a run folder names" in err
    assert not (tmp_path / "lib" / "imported").exists() and trial_rows(run_dir) == before
    # the user's own choice still loads it
    monkeypatch.setenv("SEARCHLAB_PLUGINS", "plugins_for_tests,planted_module")
    assert runner.run(run_dir, budget=runner.Budget(max_evals=10)).told == 10
    assert (tmp_path / "lib" / "imported").read_text() == "yes"
    with RunStore.open(run_dir) as store:
        store.update_config(dict(store.config, plugins="planted_module"))
    with pytest.raises(ConfigError, match="damaged"):
        runner.run(run_dir)


def test_two_searches_into_one_new_directory_one_wins(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "searchlab.cli", "search", "bits", "--max-evals", "5", "--quiet", "--json"]
    for i in range(5):
        run_dir = tmp_path / f"r{i}"
        procs = [subprocess.Popen([*cmd, "--run", str(run_dir)], cwd=root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        ends = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert sorted(code for code, _ in ends) == [0, 2], ends
        refused = next(err for code, err in ends if code == 2)
        assert len(refused.strip().splitlines()) == 1 and refused.startswith("error: ")
        with RunStore.open(run_dir) as store:
            assert len(store.trials()) == 5
        assert not list(run_dir.glob("run.sqlite.creating*"))


@pytest.mark.parametrize("options, message", [
    ({"seed": "abc"}, "--seed must be a whole number"), ({"seed": -1}, "--seed must be a whole number"),
    ({"workers": "2"}, "--workers must be a whole number"), ({"max_evals": "10"}, "--max-evals must be a number"),
    ({"max_evals": 2.5}, "--max-evals must be a whole number"), ({"workers": 2}, "the local backend runs one"),
    ({"backend": "gpu"}, "unknown backend")])
def test_engine_options_are_checked_wherever_they_come_from(tmp_path, capsys, options, message):
    from searchlab.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps(options))
    assert main(["search", "bits", "--config", str(config), "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "run").exists()
    import searchlab
    from searchlab.errors import in_python_terms
    with pytest.raises(ConfigError, match=in_python_terms(message)):  # the same check, naming keyword arguments
        searchlab.search("bits", run=tmp_path / "api", **{"seed": 0, **options})
    assert not (tmp_path / "api").exists()


def test_process_pool_survives_a_dead_worker(tmp_path):
    reference = make_run(tmp_path, "reference", max_evals=24, backend="processes", workers=2)
    runner.run(reference)
    rows = trial_rows(reference)
    victim = rows[9][1]  # the key of trial 10: its first evaluation kills its worker (SIGKILL)
    killed = make_run(tmp_path, "killed", max_evals=24, backend="processes", workers=2,
                      evaluator_config={"kill_at": victim})
    outcome = runner.run(killed)
    assert (killed / "worker-killed").is_file() and outcome.reason == "max_evals"
    assert trial_rows(killed) == rows  # the trials in flight ran again with their seeds
    # a trial that kills every worker it meets is recorded as failed, and the run goes on
    always = make_run(tmp_path, "always", max_evals=24, backend="processes", workers=2,
                      evaluator_config={"kill_at": victim, "kill_once": False})
    runner.run(always)
    with RunStore.open(always) as store:
        trials = store.trials()
    failed = [t for t in trials if t.state == "failed"]
    assert [t.key for t in failed] == [victim] and "worker process died 2 times while evaluating this trial alone" in failed[0].result.error
    assert len(trials) == len(rows) and all(t.state == "done" for t in trials if t.key != victim)


@pytest.mark.parametrize("where", ["result", "genome", "config", "snapshot"])
def test_damaged_json_inside_the_store_is_one_line_and_left_alone(tmp_path, capsys, where):
    import hashlib

    from searchlab.cli import main

    run_dir = make_run(tmp_path, max_evals=12)
    runner.run(run_dir)
    conn = sqlite3.connect(run_dir / "run.sqlite")
    table, column, row = {"result": ("trials", "result", "id=5"), "genome": ("trials", "genome", "id=3"),
                          "config": ("run", "config", "id=1"),
                          "snapshot": ("snapshots", "state", "id=(SELECT MAX(id) FROM snapshots)")}[where]
    text = conn.execute(f"SELECT {column} FROM {table} WHERE {row}").fetchone()[0]
    conn.execute(f"UPDATE {table} SET {column}=? WHERE {row}", (text[:len(text) // 2],))  # bytes cut mid-JSON
    conn.commit()
    conn.close()
    digest = hashlib.sha256((run_dir / "run.sqlite").read_bytes()).hexdigest()
    commands = [["resume", run_dir, "--max-evals", "20", "--quiet"]]
    if where != "snapshot":  # the snapshot is only read to resume
        commands += [["status", run_dir], ["report", run_dir], ["trials", run_dir]]
    for argv in commands:
        assert main([str(a) for a in argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "damaged" in err[0] and "restore the run from a copy" in err[0], err
    assert hashlib.sha256((run_dir / "run.sqlite").read_bytes()).hexdigest() == digest


def test_an_unknown_name_suggests_the_nearest(capsys):
    from searchlab.cli import main

    assert main(["search", "bits", "--strategy", "evolutoin"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'evolution'?" in err and len(err.strip().splitlines()) == 1



def test_status_holds_the_reproducibility_record(tmp_path, capsys):
    from searchlab.cli import main

    run_dir = make_run(tmp_path, max_evals=4)
    runner.run(run_dir)
    assert main(["status", str(run_dir), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["reproducibility"]
    assert record["config"]["strategy"] == "evolution" and record["versions"]["searchlab"]
    assert "torch" in record["versions"] or "numpy" in record["versions"]
    assert main(["status", str(run_dir)]) == 0
    assert "made with searchlab" in capsys.readouterr().out


def test_a_trial_submitted_after_a_worker_died_is_not_lost(tmp_path):
    """The pool can break between two calls of the run loop: a submit then must not fail."""
    import time

    from searchlab.engine.backends import ProcessBackend

    reference = make_run(tmp_path, "reference", max_evals=2)
    runner.run(reference)
    victim, other = trial_rows(reference)[0][1], trial_rows(reference)[1][1]
    run_dir = make_run(tmp_path, "pool", max_evals=2, backend="processes", workers=2,
                       evaluator_config={"kill_at": victim})
    with RunStore.open(run_dir) as store:
        config = store.config
    backend = ProcessBackend(2, [], config, run_dir, 3, ["cpu"])
    try:
        backend.submit(1, [int(c) for c in victim], 11)
        deadline = time.time() + 120
        while not backend._pool._broken and time.time() < deadline:  # the worker kills itself
            time.sleep(0.05)
        backend.submit(2, [int(c) for c in other], 12)  # into the broken pool
        results = {}
        while len(results) < 2 and time.time() < deadline:
            results.update({tid: result for tid, result, _, _ in backend.wait()})
        assert sorted(results) == [1, 2] and all(r.ok for r in results.values())
    finally:
        backend.close()
