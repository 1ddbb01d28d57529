"""The local Ray instance a run starts listens on 127.0.0.1 only and exports no metrics."""

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

import plugins_for_tests  # noqa: E402,F401  (registers the bit-string space)
from searchlab.engine.ray_backend import RayBackend  # noqa: E402

CONFIG = {"space": "bits", "strategy": "random", "evaluator": "weighted-ones", "space_config": {"length": 8},
          "evaluator_config": {}, "plugins": ["plugins_for_tests"]}


def _listening(pids: set[int]) -> list:
    return [c.laddr for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]


def test_local_instance_binds_loopback_only_without_metrics(tmp_path: Path):
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    backend = RayBackend(1, ["plugins_for_tests"], CONFIG, tmp_path, 0)
    try:
        info = ray._private.worker.global_worker.node.address_info
        assert info["node_ip_address"] == "127.0.0.1"
        assert info["metrics_export_port"] == -1  # no /metrics endpoint
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        addresses = _listening(pids)
        assert addresses, "the Ray processes should be listening somewhere"
        assert all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for a in addresses), addresses
    finally:
        backend.close()
