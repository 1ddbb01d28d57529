"""`searchlab trials`: every trial out, filtered, sorted, as text, JSON or CSV; a closed pipe is no error."""

import csv
import io
import json
import subprocess
import sys

from searchlab import cli


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_trials_listing_filters_sorts_and_exports(tmp_path, capsys):
    run = tmp_path / "evo"
    assert _run(capsys, "search", "nasbench101", "--strategy", "evolution", "--population", "10", "--sample-size",
                "3", "--max-evals", "40", "--seed", "1", "--run", run, "--quiet")[0] == 0
    code, out, _ = _run(capsys, "trials", run, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 40
    cached = [r for r in rows if r["cached_from"]]
    code, out, _ = _run(capsys, "trials", run, "--sort", "accuracy", "--limit", "3", "--json")
    top = json.loads(out)
    assert [r["objectives"]["accuracy"] for r in top] == sorted((r["objectives"]["accuracy"] for r in rows),
                                                               reverse=True)[:3]
    code, out, _ = _run(capsys, "trials", run, "--state", "cached", "--json")
    assert [r["id"] for r in json.loads(out)] == [r["id"] for r in cached]
    code, out, _ = _run(capsys, "status", run, "--json")  # cached trials counted apart from the evaluated ones
    assert json.loads(out)["trials"] == {"done": len(rows) - len(cached), "cached": len(cached)}
    code, out, _ = _run(capsys, "status", run)
    assert f"trials: done {len(rows) - len(cached)}" in out and (f", cached {len(cached)} (" in out) == bool(cached)
    code, _, err = _run(capsys, "report", run, "--plot", tmp_path / "missing" / "x.png")
    assert code == 2 and err.count("\n") == 1 and f"the folder {tmp_path / 'missing'} does not exist" in err
    assert not (tmp_path / "missing").exists()
    code, out, _ = _run(capsys, "trials", run, "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == len(rows) and float(table[0]["accuracy"]) == rows[0]["objectives"]["accuracy"]
    assert json.loads(table[0]["genome"]) == rows[0]["genome"]
    code, out, _ = _run(capsys, "trials", run, "--limit", "2")
    assert code == 0 and len(out.strip().splitlines()) == 3 and "accuracy" in out.splitlines()[0]
    code, _, err = _run(capsys, "trials", run, "--sort", "speed")
    assert code == 2 and err.strip() == "error: --sort speed: the run's objectives are accuracy, flops"
    # a reader that leaves early (`| head`) ends the command quietly (400 rows: more than a pipe holds)
    big = tmp_path / "big"
    assert _run(capsys, "search", "nasbench101", "--strategy", "random", "--max-evals", "400", "--run", big,
                "--quiet")[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "trials", str(big), "--csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err
