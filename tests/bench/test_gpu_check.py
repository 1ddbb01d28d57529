"""The GPU check kit runs end to end at tiny sizes on CPU (--smoke), so it still works when a GPU is lent.

The test runs the parts of one network (the graph step's check and timing, ResNet-20 trained and kept,
the GA against Torch-Pruning's L1 at half the FLOPs: about 45 CPU seconds); the ResNet-56 parts are the
same code, and `python bench/gpu_check.py --smoke` runs every part."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("trainer", "resnet20", "prune_resnet20")


@pytest.mark.slow
def test_gpu_check_smoke_runs_the_parts_of_one_network(tmp_path):
    pytest.importorskip("torch_pruning")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--parts", *PARTS],
                          cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "figures.json").read_text())
    assert report["parts"] == {name: "ok" for name in PARTS}
    figures = {(f["part"], f["name"]): f for f in report["figures"]}
    for expected in [("trainer", "graph vs eager, last-epoch loss"), ("trainer", "ratio trainer / plain fp32 on device"),
                     ("resnet20", "test accuracy"), ("resnet20", "weights"), ("prune_resnet20", "GA minus L1"),
                     ("prune_resnet20", "L1 (Torch-Pruning) test accuracy after fine-tuning"),
                     ("prune_resnet20", "L1 one ratio for all layers, test accuracy after fine-tuning")]:
        assert expected in figures
    assert "(2.0" in figures[("prune_resnet20", "FLOPs before -> after")]["value"]  # half the FLOPs: 2.0x
    # the trained weights are kept in the output folder, loadable without pickle
    from safetensors.torch import load_file

    assert "layer3.2.conv2.weight" in load_file(str(out / "resnet20.safetensors"))
    # every figure also went to stdout, one line each
    assert proc.stdout.count("\n[") >= len(report["figures"]) - 1


def test_the_resnet56_parts_prune_layers_the_network_has():
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_resnets import BLOCKS, block_convs

    from searchlab.search_spaces.classifiers import build_classifier

    for name in BLOCKS:
        convs = {n for n, m in build_classifier(name).named_modules() if n.endswith(".conv1")}
        assert set(block_convs(name)) == convs and len(convs) == {"resnet20": 9, "resnet56": 27}[name]
