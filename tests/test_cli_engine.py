"""The engine's command line: every bad input is one `error:` line, exit 2, and no store is damaged."""

import json
import shutil
import sqlite3

import pytest

from searchlab import cli

BITS = ["search", "bits", "--max-evals", "12", "--device", "cpu", "--quiet"]


def run_cli(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def finished_run(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, *BITS, "--run", str(run))
    assert code == 0, err
    return run


def test_search_status_report_list(tmp_path, capsys, finished_run):
    code, out, _ = run_cli(capsys, "status", str(finished_run), "--json")
    info = json.loads(out)
    assert code == 0 and info["budget"]["max_evals"] == {"used": 12, "limit": 12}
    assert info["best"]["result"]["objectives"]["accuracy"] > 0
    code, out, _ = run_cli(capsys, "report", str(finished_run), "--plot", str(tmp_path / "r.png"))
    assert code == 0 and "Pareto front" in out and (tmp_path / "r.png").stat().st_size > 10_000
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "evolution" in out and "random" in out and "bits" in out
    entries = [line for line in out.splitlines() if line.startswith("  ") and line[2] != " "]  # name, then help
    assert len({len(line) - len(line.split(None, 1)[1]) for line in entries}) == 1  # one help column
    assert max(len(line) for line in out.splitlines()) <= 120  # long helps wrap
    code, out, _ = run_cli(capsys, "search", "bits", "--help")
    assert code == 0 and "--sample-size" in out and "--length" in out and "Example" in out
    code, out, _ = run_cli(capsys, "search", "bits", "--strategy", "random", "--help")  # a strategy without options
    assert code == 0 and "--strategy random --max-evals 100" in out


def test_json_output_and_resume_raises_budget(capsys, finished_run):
    code, out, _ = run_cli(capsys, "resume", str(finished_run), "--max-evals", "20", "--quiet", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["evaluated"] == 20 and summary["stopped_by"] == "max_evals"


def test_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"strategy": "random", "max-evals": 5, "length": 8}))
    code, out, err = run_cli(capsys, "search", "bits", "--config", str(cfg), "--device", "cpu", "--quiet",
                             "--run", str(tmp_path / "r"), "--json")
    summary = json.loads(out)
    assert code == 0, err
    assert summary["evaluated"] == 5 and len(summary["best"]["genome"]) == 8


@pytest.mark.parametrize("args,needles", [
    (["search", "nope"], ["unknown space 'nope'", "bits"]),
    (["search", "bits", "--strategy", "nope"], ["unknown strategy 'nope'", "evolution", "random"]),
    (["search", "bits", "--max-evals", "0"], ["--max-evals", "must be positive"]),
    (["search", "bits", "--max-evals", "-3"], ["--max-evals"]),
    (["search", "bits", "--max-time", "ten minutes"], ["malformed duration", "20m"]),
    (["search", "bits", "--max-time", "0s"], ["must be positive"]),
    (["search", "bits", "--population", "1"], ["--population must be at least 2"]),
])
def test_bad_search_input(tmp_path, capsys, args, needles):
    code, out, err = run_cli(capsys, *args, "--run", str(tmp_path / "r"))
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "r" / "run.sqlite").exists()


def test_bad_config_files(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_cli(capsys, *BITS, "--config", str(bad), "--run", str(tmp_path / "r"))
    assert_one_line_error(code, err, "not valid JSON")
    bad.write_text(json.dumps({"populaton": 3}))
    code, _, err = run_cli(capsys, *BITS, "--config", str(bad), "--run", str(tmp_path / "r"))
    assert_one_line_error(code, err, "unknown option(s) populaton")
    bad.write_text(json.dumps({"population": "many"}))
    code, _, err = run_cli(capsys, *BITS, "--config", str(bad), "--run", str(tmp_path / "r"))
    assert_one_line_error(code, err, "population should be int")
    code, _, err = run_cli(capsys, *BITS, "--config", str(tmp_path / "missing.toml"), "--run", str(tmp_path / "r"))
    assert_one_line_error(code, err, "does not exist")


def test_bad_run_directories(tmp_path, capsys, finished_run):
    code, _, err = run_cli(capsys, "resume", str(tmp_path / "missing"))
    assert_one_line_error(code, err, "does not exist")
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello")
    code, _, err = run_cli(capsys, "status", str(not_a_store))
    assert_one_line_error(code, err, "not a run directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "resume", str(empty))
    assert_one_line_error(code, err, "no run store")

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "run.sqlite").write_bytes(b"this is not a database" * 50)
    truncated = tmp_path / "truncated"
    shutil.copytree(finished_run, truncated)
    data = (truncated / "run.sqlite").read_bytes()
    (truncated / "run.sqlite").write_bytes(data[: len(data) // 3])
    for broken in (garbage, truncated):
        before = (broken / "run.sqlite").read_bytes()
        for command in ("resume", "status", "report"):
            code, _, err = run_cli(capsys, command, str(broken))
            assert_one_line_error(code, err, "left untouched")
            assert (broken / "run.sqlite").read_bytes() == before


def test_store_from_newer_schema(tmp_path, capsys, finished_run):
    conn = sqlite3.connect(finished_run / "run.sqlite")
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    code, _, err = run_cli(capsys, "resume", str(finished_run))
    assert_one_line_error(code, err, "newer searchlab", "upgrade")


def test_search_into_existing_run_keeps_it(capsys, finished_run):
    before = (finished_run / "run.sqlite").read_bytes()
    code, _, err = run_cli(capsys, *BITS, "--run", str(finished_run))
    assert_one_line_error(code, err, "already holds a run", "resume")
    assert (finished_run / "run.sqlite").read_bytes() == before


@pytest.mark.parametrize("space", ["prune", "binary", "sr", "cyclegan", "nasbench101", "nasbench201"])
def test_every_built_in_search_prints_its_help(capsys, space):
    code, out, _ = run_cli(capsys, "search", space, "--help")
    assert code == 0 and "Example" in out
    if space in ("prune", "binary", "sr", "cyclegan"):  # the size target, in one vocabulary
        assert "hard budget on" in out and ("--max-flops" in out or "--max-params" in out)
