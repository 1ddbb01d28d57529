import json

import pytest

from searchlab import cli

ROW0 = "00005c142e6f48ac74fdcf73e3439874"


@pytest.fixture(scope="module", autouse=True)
def nb101_cache(tmp_path_factory):
    """One SQLite copy of the bundled table for the whole test session (built on first use)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "nb101-cache"))
        yield


def test_query_by_hash_and_spec(capsys, tmp_path):
    assert cli.main(["nasbench101", "query", "--hash", ROW0, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hash"] == ROW0 and out["repeats"] == 1
    assert out["mean"]["test_accuracy"] == pytest.approx(0.9211739, abs=1e-6)
    spec = tmp_path / "cell.json"
    spec.write_text(json.dumps({"matrix": out["matrix"], "ops": out["ops"]}))
    assert cli.main(["nasbench101", "query", "--spec", f"@{spec}"]) == 0
    text = capsys.readouterr().out
    assert ROW0 in text and "rank" in text


@pytest.mark.parametrize("args, words", [
    (["--spec", "{bad json"], "not valid JSON"),
    (["--spec", '{"matrix": [[0,1],[1,0]], "ops": ["input","output"]}'], "upper triangular"),
    (["--spec", '{"matrix": [[0,1,0],[0,0,1],[0,0,0]], "ops": ["input","conv7x7","output"]}'], "unknown op"),
    (["--hash", "f" * 32], "not in NAS-Bench-101"),
    (["--hash", "1234"], "32 hex"),
    (["--hash", ROW0, "--db", "README.md"], "not a NAS-Bench-101 table"),
])
def test_bad_input_is_one_line_exit_2(args, words, capsys):
    assert cli.main(["nasbench101", "query", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err


def test_stats_and_draw(capsys, tmp_path):
    assert cli.main(["nasbench101", "stats", "--json", "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cells"] == 423_624 and out["by_vertices"]["7"]["cells"] == 359_082
    assert out["best"][0]["test_accuracy"] == pytest.approx(0.94661, abs=1e-5) and len(out["best"]) == 3
    png = tmp_path / "cell.png"
    assert cli.main(["nasbench101", "draw", "--hash", ROW0, "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["nasbench101", "draw", "--hash", ROW0, "--out", str(tmp_path / "x.txt")]) == 2


def test_enumerate_small_space_to_jsonl(capsys, tmp_path):
    out = tmp_path / "cells.jsonl"
    assert cli.main(["nasbench101", "enumerate", "--max-vertices", "5", "--workers", "1", "--quiet",
                     "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labelled_graphs"] == 3364 and summary["cells"] == 2532
    assert list(summary["cumulative_unique_by_max_vertices"].values()) == [1, 7, 91, 2532]
    lines = out.read_text().splitlines()
    assert len(lines) == 2532
    first = json.loads(lines[0])
    assert set(first) == {"hash", "matrix", "ops"} and first["ops"][0] == "input"
    assert cli.main(["nasbench101", "enumerate", "--max-vertices", "3", "--out", str(tmp_path / "x.csv")]) == 2
