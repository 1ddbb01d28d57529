"""Status lines: long steps are reported on stderr, short ones and failures leave it alone, --quiet silences."""

import itertools

import pytest

from searchlab import progress


@pytest.fixture
def clock(monkeypatch):
    """perf_counter advancing by the given seconds per call."""
    def use(seconds):
        ticks = itertools.count(0.0, seconds)
        monkeypatch.setattr(progress.time, "perf_counter", lambda: next(ticks))
    return use


def test_steps_in_a_log(clock, capsys):
    progress.enable(True)
    try:
        clock(3.0)
        with progress.step("fitting renas on 424 labelled cells"):
            pass
        assert capsys.readouterr().err.strip() == "fitting renas on 424 labelled cells: done in 3.0 s"
        clock(0.5)
        with progress.step("reading mnist:data"):
            pass
        assert capsys.readouterr().err == ""  # short steps stay silent in a log
        clock(3.0)
        with pytest.raises(ValueError), progress.step("reading cifar10:bad"):
            raise ValueError("bad")
        assert capsys.readouterr().err == ""  # a failed step leaves the error as the only line
    finally:
        progress.enable(False)
    clock(3.0)
    with progress.step("anything"):
        pass
    assert capsys.readouterr().err == "" and not progress.enabled()


def test_the_command_line_turns_status_lines_on_unless_quiet(capsys, monkeypatch):
    from searchlab import cli

    seen = []
    monkeypatch.setattr(cli, "build_parser", lambda: (_ for _ in ()).throw(RuntimeError("stop")))
    for argv in (["list"], ["list", "--quiet"]):
        monkeypatch.setattr(progress, "enable", lambda on=True, argv=argv: seen.append((tuple(argv), on)))
        with pytest.raises(RuntimeError):
            cli.main(argv)
    assert seen == [(("list",), True), (("list",), False), (("list", "--quiet"), False), (("list", "--quiet"), False)]
