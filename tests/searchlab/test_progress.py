"""Progress reaches every output: in a log a long step writes a start line, a line every interval and an
end line; quick steps and failures leave the log alone; --quiet silences; a real command redirected to
a file hears from its search at a fixed interval."""

import os
import subprocess
import sys
import time

import pytest

from searchlab import progress


@pytest.fixture
def log(monkeypatch, capsys):
    """Progress on, stderr not a terminal, a clock the test moves, and tick() called by the test only."""
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(progress, "_STATE", {"last_line": 0.0, "ticker_pid": os.getpid()})  # no thread
    monkeypatch.setattr(progress, "_ACTIVE", [])
    monkeypatch.delenv("SEARCHLAB_PROGRESS_INTERVAL", raising=False)
    progress.enable(True)

    def advance(seconds):
        now[0] += seconds
        progress.tick()
        return capsys.readouterr().err.splitlines()
    yield advance
    progress.enable(False)


def test_a_long_step_in_a_log_writes_start_heartbeat_and_end_lines(log):
    with progress.step("pretraining the graph transformer"):
        assert log(1.0) == []  # within the grace period: nothing yet
        assert log(1.0) == ["pretraining the graph transformer ..."]
        assert log(10.0) == []  # the start line counts: the next line is due an interval later
        assert log(10.0) == ["pretraining the graph transformer: 22 s elapsed"]
        assert log(19.0) == []
        assert log(1.0) == ["pretraining the graph transformer: 42 s elapsed"]
    assert log(0.0) == ["pretraining the graph transformer: done in 42.0 s"]


def test_quick_and_failed_steps_leave_a_log_alone(log):
    with progress.step("reading mnist:data"):
        log(0.5)
    assert log(0.0) == []
    with pytest.raises(ValueError), progress.step("reading cifar10:bad"):
        assert log(3.0) == ["reading cifar10:bad ..."]
        raise ValueError("bad")
    assert log(0.0) == []  # no "done" line: the error is what the user reads next


def test_a_bar_in_a_log_reports_its_count_and_an_estimate(log):
    with progress.command("searchlab search bits"):
        assert log(8.0) == ["searchlab search bits: 8 s elapsed"]  # the command itself, within `first` seconds
        bar = progress.bar(total=40, desc="searching", unit="eval")
        bar.update(10)
        bar.set_postfix_str("best accuracy=12.5")
        assert log(2.0) == ["searching: 40 evals ..."]
        assert log(20.0) == ["searching: 10/40 evals (25%), 22 s elapsed, about 1m06s left, best accuracy=12.5"]
        with progress.step("round 1: fitting renas"):
            assert log(2.0) == ["round 1: fitting renas ..."]
            bar.update(10)
            assert log(20.0) == ["searching: 20/40 evals (50%), 44 s elapsed, about 44 s left, best accuracy=12.5; "
                                 "round 1: fitting renas: 22 s elapsed"]
        bar.update(20)
        bar.close()
        assert log(0.0) == ["round 1: fitting renas: done in 22.0 s", "searching: 40 evals done in 44.0 s"]


def test_progress_is_off_for_library_use_and_with_quiet(capsys):
    assert not progress.enabled()
    with progress.step("anything"), progress.command("searchlab x"):
        progress.bar(range(3), desc="counting").update(3)
    assert capsys.readouterr().err == ""


def test_the_command_line_turns_progress_on_unless_quiet(capsys, monkeypatch):
    from searchlab import cli

    seen = []
    monkeypatch.setattr(cli, "build_parser", lambda: (_ for _ in ()).throw(RuntimeError("stop")))
    for argv in (["list"], ["list", "--quiet"]):
        monkeypatch.setattr(progress, "enable", lambda on=True, argv=argv: seen.append((tuple(argv), on)))
        with pytest.raises(RuntimeError):
            cli.main(argv)
    assert seen == [(("list",), True), (("list",), False), (("list", "--quiet"), False), (("list", "--quiet"), False)]


def _lines_as_they_come(cmd, path, env):
    """Run `cmd` with stderr redirected to `path`; (seconds since start, line) for each line as it appeared."""
    seen = []
    with open(path, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        while True:
            finished = proc.poll() is not None
            lines = path.read_text().splitlines()
            seen += [(time.perf_counter() - start, line) for line in lines[len(seen):]]
            if finished:
                return proc.returncode, seen
            time.sleep(0.02)


def test_a_search_with_stderr_in_a_file_writes_a_line_every_interval(tmp_path):
    """The real command with a 1-second interval (20 s by default): the same timer, 20 times faster."""
    cmd = [sys.executable, "-c", "import sys, cli; sys.exit(cli.main())", "search", "bits", "--length", "12",
           "--sleep", "0.12", "--max-evals", "40", "--seed", "0", "--device", "cpu", "--no-finalize",
           "--run", str(tmp_path / "run")]
    env = dict(os.environ, SEARCHLAB_PROGRESS_INTERVAL="1")
    code, lines = _lines_as_they_come(cmd, tmp_path / "stderr.log", env)
    assert code == 0, lines
    text = [line for _, line in lines]
    assert "searching: 40 evals ..." in text
    beats = [(t, line) for t, line in lines if line.startswith("searching: ") and "elapsed" in line]
    assert len(beats) >= 2, text  # 40 evaluations of 0.12 s: at least 4.8 s
    assert all("/40 evals (" in line and "left" in line for _, line in beats[1:]), text
    assert text[-1].startswith("searching: 40 evals done in ")
    times = [t for t, _ in lines]
    assert max(b - a for a, b in zip(times, times[1:])) < 3.0, lines  # 1 s apart, with room for a loaded machine


def test_a_notebook_kernel_gets_the_notebook_bars(monkeypatch):
    import types

    class ZMQInteractiveShell:  # what get_ipython() returns inside a Jupyter kernel
        pass

    monkeypatch.setattr(progress.sys, "stderr", types.SimpleNamespace(isatty=lambda: False))
    assert progress.mode() == "log"
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=ZMQInteractiveShell))
    assert progress.mode() == "notebook"
