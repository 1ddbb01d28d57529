"""Run the real command line in a subprocess under resource limits, for the untrusted-input tests: an
address-space limit (so a file that makes searchlab allocate gigabytes fails the test instead of the
machine), and optionally a file-size limit (writes beyond it fail with EFBIG, as on a full disk)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY = 2 * 2**30  # address space: a command on a small file needs well under 1.5 GB


def run_cli(*argv, memory: int = MEMORY, file_bytes: int | None = None, timeout: float = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    return subprocess.run([sys.executable, "-m", "searchlab.cli", *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit, env=env)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a command that exited 2 (asserted), without a traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]
