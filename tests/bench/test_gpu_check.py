"""The GPU check kit runs end to end at tiny sizes on CPU (--smoke), so it still works when a GPU is lent."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("trainer", "resnet20", "prune_resnet20", "resnet56", "prune_resnet56", "binary", "sr", "cyclegan",
         "gpu_tests")


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_part(tmp_path):
    pytest.importorskip("torch_pruning")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--test-paths", "tests/searchlab/test_graph_step.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "figures.json").read_text())
    assert report["parts"] == {name: "ok" for name in PARTS}
    names = {(f["part"], f["name"]) for f in report["figures"]}
    for expected in [("trainer", "graph vs eager, last-epoch loss"), ("trainer", "ratio trainer / plain fp32 on device"),
                     ("resnet20", "test accuracy"), ("resnet56", "weights"),
                     ("prune_resnet20", "L1 (Torch-Pruning) test accuracy after fine-tuning"),
                     ("prune_resnet56", "GA minus L1"), ("binary", "candidates evaluated"),
                     ("sr", "candidates evaluated"), ("cyclegan", "masked eval/s, keep 0.5"), ("gpu_tests", "skipped")]:
        assert expected in names
    # the trained weights are kept in the output folder, loadable without pickle
    from safetensors.torch import load_file

    assert "layer3.8.conv2.weight" in load_file(str(out / "resnet56.safetensors"))
    assert (out / "resnet20.safetensors").stat().st_size < 2_000_000
    # every figure also went to stdout, one line each
    assert proc.stdout.count("\n[") >= len(report["figures"]) - 1
