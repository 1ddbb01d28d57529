"""Worker processes share the cores instead of each taking all of them (oversubscription)."""

import os

from searchlab.engine.backends import threads_per_worker


def test_workers_share_the_cores_this_process_may_use():
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores
    assert threads_per_worker(2) == max(1, cores // 2)
    assert threads_per_worker(cores * 4) == 1  # more workers than cores: one thread each, never zero
