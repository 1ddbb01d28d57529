"""Storage faults: a finished run on read-only storage and a full disk each end in one line, exit 2, with
the store intact. These mount a filesystem, so they run as root where mounting is allowed and are
skipped elsewhere."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from searchlab.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def _sh(*argv) -> bool:
    return subprocess.run(list(argv), capture_output=True).returncode == 0


@pytest.fixture
def mountpoint(tmp_path):
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a filesystem needs root on Linux")
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    _sh("umount", str(point))


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "searchlab.cli", *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_a_finished_run_on_read_only_storage(tmp_path, mountpoint):
    src = tmp_path / "src"
    assert _cli("search", "bits", "--max-evals", "12", "--run", src / "run", "--quiet").returncode == 0
    if not (_sh("mount", "--bind", str(src), str(mountpoint))
            and _sh("mount", "-o", "remount,bind,ro", str(mountpoint))):
        pytest.skip("bind mounts are not allowed here")
    run = mountpoint / "run"
    before = (src / "run" / "run.sqlite").read_bytes()
    for command in (["status", run], ["report", run], ["trials", run, "--json"]):
        out = _cli(*command)
        assert out.returncode == 0 and "corrupt" not in out.stderr, out.stderr
    out = _cli("resume", run, "--max-evals", "20")
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "read-only storage" in out.stderr and "Traceback" not in out.stderr
    assert (src / "run" / "run.sqlite").read_bytes() == before


def test_a_full_disk_is_one_line_and_the_store_stays_intact(tmp_path, mountpoint):
    if not _sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)):
        pytest.skip("tmpfs mounts are not allowed here")
    run = mountpoint / "run"
    out = _cli("search", "bits", "--length", "200", "--max-evals", "100000", "--run", run, "--quiet")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and ("full" in errors[0] or "No space" in errors[0])
    with RunStore.open(run) as store:  # opens, passes SQLite's check, and keeps what was committed
        told = [t for t in store.trials() if t.result is not None]
    assert len(told) >= 5
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert _cli("resume", copy, "--max-evals", str(len(told) + 5), "--quiet").returncode == 0
