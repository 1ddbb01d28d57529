"""The GPU check kit runs end to end at tiny sizes on CPU (--smoke), so it still works when a GPU is lent."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_part(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--test-paths", "tests/searchlab/test_trainer.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["parts"] == {name: "ok" for name in
                               ("trainer", "resnet20", "prune", "binary", "sr", "cyclegan", "gpu_tests")}
    names = {(f["part"], f["name"]) for f in report["figures"]}
    for expected in [("trainer", "ratio trainer / plain fp32 on device"), ("resnet20", "test accuracy"),
                     ("prune", "ratio masked / rebuilt"), ("binary", "candidates evaluated"),
                     ("sr", "candidates evaluated"), ("cyclegan", "masked eval/s, keep 0.5"),
                     ("gpu_tests", "skipped")]:
        assert expected in names
    # every figure also went to stdout, one line each
    assert proc.stdout.count("\n[") >= len(report["figures"]) - 1
