"""The resume guarantee: kill -9 at random moments, resume each time, end with the same trials."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from test_runner import trial_rows

ARGS = ["bits", "--length", "16", "--population", "8", "--sample-size", "3", "--sleep", "0.01",
        "--max-evals", "60", "--seed", "11", "--device", "cpu", "--quiet", "--no-finalize"]


def cli(*args):
    return [sys.executable, "-c", "import sys, cli; sys.exit(cli.main())", *args]


def told(run_dir):
    try:
        conn = sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True, timeout=1)
        n = conn.execute("SELECT COUNT(*) FROM trials WHERE state IN ('done', 'failed')").fetchone()[0]
        conn.close()
        return n
    except sqlite3.Error:
        return 0


def run_and_kill(cmd, run_dir, rng, at_least):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while proc.poll() is None and told(run_dir) < at_least and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(float(rng.uniform(0, 0.15)))
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.mark.parametrize("backend", ["local", "processes"])
def test_kill9_and_resume_gives_the_uninterrupted_trials(tmp_path, backend):
    extra = ["--backend", backend, "--workers", "2"] if backend == "processes" else []
    whole = tmp_path / "whole"
    done = subprocess.run(cli("search", *ARGS, *extra, "--run", str(whole)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reference = trial_rows(whole)
    assert len([r for r in reference if r[3] is None]) == 60

    rng = np.random.default_rng(0)
    run_dir = tmp_path / "killed"
    kills = 0
    code = run_and_kill(cli("search", *ARGS, *extra, "--run", str(run_dir)), run_dir, rng, at_least=3)
    kills += code == -signal.SIGKILL
    while kills < 6:
        progress = told(run_dir)
        if progress >= 55:
            break
        code = run_and_kill(cli("resume", str(run_dir), "--quiet", "--no-finalize"), run_dir, rng, progress + 4)
        kills += code == -signal.SIGKILL
    assert kills >= 5, f"only {kills} kills landed mid-run"
    final = subprocess.run(cli("resume", str(run_dir), "--quiet", "--no-finalize"), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert trial_rows(run_dir) == reference


def test_second_resume_is_refused_while_the_first_runs(tmp_path):
    run_dir = tmp_path / "r"
    # two minutes of work, so the first is still running when the second starts, even on a loaded machine
    slow = ["bits", "--sleep", "0.2", "--max-evals", "600", "--device", "cpu", "--quiet", "--run", str(run_dir)]
    first = subprocess.Popen(cli("search", *slow), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while told(run_dir) < 1 and time.time() < deadline:
            time.sleep(0.02)
        second = subprocess.run(cli("resume", str(run_dir), "--quiet"), capture_output=True, text=True)
        assert second.returncode == 2
        assert second.stderr.startswith("error: ") and "in use by another searchlab process" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        first.kill()
        first.wait()
