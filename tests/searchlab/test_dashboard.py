"""The dashboard's mirror: real runs read into Optuna studies, trial for trial, without writing to them."""

import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import searchlab
from searchlab.store.run_store import RunStore

optuna = pytest.importorskip("optuna", reason="the dashboard extra is not installed (pip install searchlab[dashboard])")
pytest.importorskip("optuna_dashboard", reason="the dashboard extra is not installed")

from optuna.trial import TrialState  # noqa: E402

from searchlab.output import dashboard  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
STATES = {"asked": TrialState.WAITING, "running": TrialState.RUNNING, "done": TrialState.COMPLETE,
          "failed": TrialState.FAIL}


def assert_mirrored(mirror: dashboard.Mirror, run_dir: Path) -> list:
    """The run's trials and the study's trials are the same, in order: state, values, error, key."""
    run = next(r for r in mirror.runs if r.run_dir == run_dir)
    study = optuna.load_study(study_name=run.study_name, storage=mirror.storage)
    with RunStore.open(run_dir) as store:
        trials, objectives = store.trials(), store.config["objectives"]
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE if m == "max"
                                else optuna.study.StudyDirection.MINIMIZE for m in objectives.values()]
    assert study.metric_names == list(objectives)
    assert len(study.trials) == len(trials)
    for t, o in zip(trials, study.trials):
        assert o.user_attrs["trial"] == t.id and o.user_attrs["key"] == t.key
        assert o.state == STATES[t.state]
        assert json.loads(o.user_attrs["genome"]) == t.genome
        if t.state == "done":
            assert o.values == [t.result.objectives[k] for k in objectives]
        if t.state == "failed":
            assert o.values is None and o.user_attrs["error"] == t.result.error
    return study.trials


def digest(path: Path) -> str:
    return hashlib.sha256((path / "run.sqlite").read_bytes()).hexdigest()


def test_a_search_is_mirrored_and_a_refresh_adds_only_new_trials(tmp_path):
    nb = tmp_path / "nb101-random"
    searchlab.search("nasbench101", strategy="random", max_evals=12, seed=3, run=nb)
    # every trial fails, for a real reason: the binary networks take colour images, MNIST is grey
    grey = tmp_path / "binary-grey"
    run = searchlab.search("binary", net="vgg-small", data=f"mnist:{DATA / 'mnist_mini'}", population=3,
                           generations=1, width_scale=0.125, train_size=100, run=grey)
    assert [t["state"] for t in run.trials()] == ["failed"] * 3
    before = {d: digest(d) for d in (nb, grey)}

    mirror = dashboard.Mirror([nb, grey])
    assert mirror.refresh() == {"nb101-random": 12, "binary-grey": 3}
    assert mirror.refresh() == {"nb101-random": 0, "binary-grey": 0}
    first = assert_mirrored(mirror, nb)
    failed = assert_mirrored(mirror, grey)
    assert "3-channel images" in failed[0].user_attrs["error"]
    assert set(first[0].params) == {f"ops[{i}]" for i in range(7)}  # the short fields; the 7x7 matrix is not one
    assert {d: digest(d) for d in (nb, grey)} == before              # nothing written to the runs

    searchlab.resume(nb, max_evals=20)
    assert mirror.refresh() == {"nb101-random": 8, "binary-grey": 0}
    now = assert_mirrored(mirror, nb)
    assert [t._trial_id for t in now[:12]] == [t._trial_id for t in first]  # the first twelve kept as they were
    assert len({tuple(t.values) for t in now if t.state == TrialState.COMPLETE}) > 1
    best = max(now, key=lambda t: t.values[0])
    assert best.user_attrs["key"] == searchlab.open_run(nb).best()["key"]


@pytest.mark.slow
def test_a_running_search_is_followed_trial_by_trial(tmp_path):
    """A search writes its run in another process while the mirror re-reads it: every trial seen waiting
    or running is updated when it finishes, and the study ends equal to the run."""
    run_dir = tmp_path / "binary-live"
    cmd = [sys.executable, "-m", "searchlab.cli", "search", "binary", "--net", "vgg-small",
           "--data", f"cifar10:{DATA / 'cifar10_mini'}", "--population", "3", "--generations", "1",
           "--width-scale", "0.125", "--train-size", "60", "--epochs-per-candidate", "1", "--no-finalize",
           "--quiet", "--run", str(run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run_dir / "run.sqlite").exists():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() else "no run"
            time.sleep(0.05)
        mirror = dashboard.Mirror([run_dir])
        seen: dict[int, set] = {}
        while proc.poll() is None and time.time() < deadline:
            mirror.refresh()
            for t in mirror.storage.get_all_trials(mirror.runs[0].study_id):
                seen.setdefault(t.number, set()).add(t.state)
            time.sleep(0.05)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    mirror.refresh()
    trials = assert_mirrored(mirror, run_dir)
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert any(TrialState.RUNNING in states or TrialState.WAITING in states for states in seen.values())
    assert mirror.refresh() == {"binary-live": 0}


def test_the_server_answers_reads_and_refuses_writes(tmp_path):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"
    for d in (a, b):
        searchlab.search("nasbench101", strategy="random", max_evals=3, seed=0, run=d)
    board = dashboard.Dashboard([a, b], port=0, refresh=0.2)
    assert [r.study_name for r in board.mirror.runs] == [str(a), str(b)]  # same folder name: told apart
    import threading
    threading.Thread(target=board.serve_forever, daemon=True).start()
    try:
        base = board.url.rsplit("/dashboard", 1)[0]
        assert board.url.startswith("http://127.0.0.1:")
        studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=10))["study_summaries"]
        assert [s["study_name"] for s in studies] == [str(a), str(b)]
        request = urllib.request.Request(f"{base}/api/studies/0", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405
        assert len(optuna.get_all_study_summaries(board.mirror.storage)) == 2
    finally:
        board.server.shutdown()
        board.close()


def test_bad_input_is_one_line(tmp_path):
    from searchlab.errors import ConfigError, RunStoreError

    with pytest.raises(RunStoreError, match="does not exist"):
        dashboard.Mirror([tmp_path / "nothing"])
    run = tmp_path / "r"
    searchlab.search("nasbench101", strategy="random", max_evals=2, seed=0, run=run)
    with pytest.raises(ConfigError, match="--refresh"):
        dashboard.Dashboard([run], refresh=0)
    with pytest.raises(ConfigError, match="--port"):
        dashboard.Dashboard([run], port=70000)
