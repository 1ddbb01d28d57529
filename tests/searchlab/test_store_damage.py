"""A damaged run store: every column of run.sqlite is read back checked for its type, so a flipped byte
(invalid UTF-8 in a text column) or a wrong-typed value is one line naming the file and the row, exit 2,
for status, trials, report and resume alike, and the store is left byte for byte as it was."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest

import plugins_for_tests  # noqa: F401  (registers the bit-string space)
from searchlab.engine import runner
from searchlab.cli import main


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("store") / "run"
    runner.create_run(run, space="bits", strategy="evolution", evaluator="weighted-ones", space_config={"length": 12},
                      strategy_config={"population": 8, "sample_size": 3}, evaluator_config={}, seed=3,
                      budget=runner.Budget(max_evals=12), device="cpu")
    runner.run(run)
    return run


READ_AND_RESUME = ("status", "trials", "report", "resume")
RESUME = ("resume",)  # a snapshot and the progress row are only read to resume (and by status/report)
CASES = {
    "invalid UTF-8 in a key": ("UPDATE trials SET key=CAST(X'ff41' AS TEXT) WHERE id=3", "key of trial 3",
                               READ_AND_RESUME),
    "invalid UTF-8 in a genome": ("UPDATE trials SET genome=CAST(X'5bff5d' AS TEXT) WHERE id=4", "genome of trial 4",
                                  READ_AND_RESUME),
    "invalid UTF-8 in the configuration": ("UPDATE run SET config=CAST(X'7bff7d' AS TEXT)", "run configuration",
                                           READ_AND_RESUME),
    "invalid UTF-8 in a worker": ("UPDATE trials SET worker=CAST(X'ff' AS TEXT) WHERE id=2", "worker of trial 2",
                                  READ_AND_RESUME),
    "a seed of text": ("UPDATE run SET seed='abc'", "run seed", ("status", "report", "resume")),
    "a created time of text": ("UPDATE run SET created='x'", "creation time", ("status", "report")),
    "an elapsed time of text": ("UPDATE progress SET elapsed='x'", "elapsed time", ("status", "report", "resume")),
    "a schema version of text": ("UPDATE meta SET value='abc' WHERE key='schema_version'", "schema",
                                 READ_AND_RESUME),
    "workers of text": ("UPDATE run SET config=json_set(config, '$.workers', 'two')", "run configuration",
                        READ_AND_RESUME),
    "a snapshot that is a list": ("UPDATE snapshots SET state='[]'", "strategy snapshot", ("status", "resume")),
    "a snapshot with a bad rng": ("UPDATE snapshots SET state=json_set(state, '$.rng', 'x')", "strategy snapshot",
                                  RESUME),
    "a snapshot with a bad population": ("UPDATE snapshots SET state=json_set(state, '$.population', 5)",
                                         "strategy snapshot", RESUME),
    "a snapshot with a bad asked count": ("UPDATE snapshots SET state=json_set(state, '$.asked', 'x')",
                                          "strategy snapshot", RESUME),
    "a snapshot with a parent that is no genome": (
        "UPDATE snapshots SET state=json_set(state, '$.population[0][0]', 'abc')", "strategy snapshot", RESUME),
    "a trial seed of text": ("UPDATE trials SET seed='abc' WHERE id=2", "seed of trial 2", READ_AND_RESUME),
    "an objective of text": ("UPDATE trials SET result=json_set(result, '$.objectives.accuracy', 'x') WHERE id=5",
                             "result of trial 5", READ_AND_RESUME),
    "a genome nested 100,000 deep": ("UPDATE trials SET genome='" + "[" * 100_000 + "]" * 100_000 + "' WHERE id=6",
                                     "genome of trial 6", READ_AND_RESUME),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_column_is_one_line_naming_the_row(finished, tmp_path, capsys, case):
    sql, what, commands = CASES[case]
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    conn = sqlite3.connect(run / "run.sqlite")
    conn.execute(sql)
    conn.commit()
    conn.close()
    digest = hashlib.sha256((run / "run.sqlite").read_bytes()).hexdigest()
    for command in commands:
        argv = [command, str(run)] + (["--max-evals", "14", "--quiet"] if command == "resume" else [])
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0] and "damaged" in err[0] and str(run / "run.sqlite") in err[0], err
    assert hashlib.sha256((run / "run.sqlite").read_bytes()).hexdigest() == digest


def test_the_dashboard_reports_a_damaged_schema_version_in_one_line(finished, tmp_path):
    pytest.importorskip("optuna", reason="the dashboard extra is not installed")
    pytest.importorskip("optuna_dashboard", reason="the dashboard extra is not installed")
    from searchlab.output import dashboard
    from searchlab.errors import RunStoreError

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    with sqlite3.connect(run / "run.sqlite") as conn:
        conn.execute("UPDATE meta SET value='abc' WHERE key='schema_version'")
    conn.close()
    with pytest.raises(RunStoreError, match=r"unknown store schema \(damaged\)"):
        dashboard.Mirror([run])
