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


def listing(run_dir: Path) -> dict:
    """Every file of the run folder with its size and content digest."""
    return {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(run_dir.iterdir())}


def get(url: str):
    with urllib.request.urlopen(url, timeout=20) as answer:
        return answer.status, answer.headers, answer.read()


def test_a_finished_run_is_read_without_creating_a_file_in_it(tmp_path):
    """Mirroring and serving a finished run leaves its folder as it was: no -shm or -wal beside run.sqlite."""
    run = tmp_path / "finished"
    searchlab.search("nasbench101", strategy="random", max_evals=6, seed=1, run=run)
    before = listing(run)
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    board = dashboard.Dashboard([run], port=0, refresh=0.1)
    import threading
    threading.Thread(target=board.serve_forever, daemon=True).start()
    try:
        base = board.url.rsplit("/dashboard", 1)[0]
        assert len(json.loads(get(f"{base}/api/studies/0")[2])["trials"]) == 6
        time.sleep(0.5)  # a few refreshes
        assert board.mirror.refresh() == {"finished": 0}
    finally:
        board.server.shutdown()
        board.close()
    assert listing(run) == before


def test_every_page_renders_and_no_control_is_offered_that_the_server_refuses(tmp_path):
    run = tmp_path / "nb"
    searchlab.search("nasbench101", strategy="random", max_evals=5, seed=2, run=run)
    board = dashboard.Dashboard([run], port=0, refresh=1)
    import threading
    threading.Thread(target=board.serve_forever, daemon=True).start()
    try:
        base = board.url.rsplit("/dashboard", 1)[0]
        status, headers, page = get(f"{base}/dashboard/studies/0")
        assert status == 200 and b'<script defer src="/searchlab/dashboard.js"></script></head>' in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]  # optuna-dashboard's own headers kept
        status, headers, script = get(f"{base}/searchlab/dashboard.js")
        assert headers["Content-Type"].startswith("text/javascript")
        for hidden in (b"AddBoxIcon", b"DeleteIcon", b"DriveFileRenameOutlineIcon", b"EditIcon",
                       b"fail trial", b"Hyperparameter Importance"):
            assert hidden in script
        # the empty trial-table route lands on the page that holds the trials table; the note page on the study
        assert get(f"{base}/dashboard/studies/0/trialTable")[0] == 200
        with pytest.raises(urllib.error.HTTPError) as moved:
            urllib.request.build_opener(NoRedirect).open(f"{base}/dashboard/studies/0/trialTable", timeout=10)
        assert moved.value.code == 302 and moved.value.headers["Location"] == "/dashboard/studies/0/smartSelection"
        with pytest.raises(urllib.error.HTTPError) as moved:
            urllib.request.build_opener(NoRedirect).open(f"{base}/dashboard/studies/0/note", timeout=10)
        assert moved.value.headers["Location"] == "/dashboard/studies/0"
        # importance over genome fields is not offered; the data every page reads is there
        importance = json.loads(get(f"{base}/api/studies/0/param_importances")[2])
        assert importance == {"param_importances": [[], []]}  # accuracy and flops: no parameters
        detail = json.loads(get(f"{base}/api/studies/0")[2])
        assert len(detail["trials"]) == 5 and detail["union_search_space"]
        assert json.loads(get(f"{base}/api/meta")[2])["artifact_is_available"] is False
        assert get(f"{base}/csv/0")[2].count(b"\n") >= 6  # the trials table's CSV download
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/studies", data=b"{}", method="POST"), timeout=10)
        assert refused.value.code == 405
    finally:
        board.server.shutdown()
        board.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_dashboard(run: Path, *flags: str) -> subprocess.Popen:
    """The dashboard as a terminal starts it: Ctrl-C (SIGINT) at its default even where the test run itself
    was started in the background by a shell, which makes its jobs ignore SIGINT (and Python keeps that)."""
    import signal

    return subprocess.Popen([sys.executable, "-m", "searchlab.cli", "dashboard", str(run), "--port", "0", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_run_being_created_is_waited_for(tmp_path):
    run = tmp_path / "late"
    proc = start_dashboard(run, "--wait", "120", "--refresh", "0.2")
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"waiting up to 120s for {run} to be created") and "Ctrl-C" in first
        searchlab.search("nasbench101", strategy="random", max_evals=3, seed=0, run=run)
        line = proc.stdout.readline()  # opened as soon as the store appeared, then followed
        assert line.startswith("dashboard of 1 run(s), ") and " trials so far: http://127.0.0.1:" in line
        base = line.split(": ", 1)[1].strip().rsplit("/dashboard", 1)[0]
        deadline = time.time() + 60
        while len(json.loads(get(f"{base}/api/studies/0")[2])["trials"]) < 3:
            assert time.time() < deadline, "the dashboard never showed the run's 3 trials"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()


def test_waiting_ends_with_one_line_or_ctrl_c(tmp_path):
    import signal

    proc = start_dashboard(tmp_path / "never", "--wait", "0.5")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().count("\n") == 0
    assert "was not created within 0.5s" in err and "--wait" in err
    proc = start_dashboard(tmp_path / "never", "--wait", "100")
    assert proc.stdout.readline().startswith("waiting up to 100s")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "dashboard stopped" in out and "Traceback" not in err
    proc = start_dashboard(tmp_path / "never", "--wait", "-1")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--wait must be" in err
