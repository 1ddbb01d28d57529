"""Random byte flips in the files searchlab reads from a folder it did not necessarily write: a small
run.sqlite, a predictor directory and a pruned folder. Whatever the damage, a command exits 0 or 2 with
one `error:` line, never a traceback, and what it was given stays as it was. Fixed seeds; most cases run in process, a few through the real command line."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import plugins_for_tests  # noqa: F401  (registers the bit-string space)
from searchlab.engine import runner
from searchlab.cli import main

HASH = "00005c142e6f48ac74fdcf73e3439874"
CASES = 80  # per kind of folder: 240 in all
THROUGH_THE_COMMAND_LINE = 1  # of them, per kind (the first case)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A finished run, a trained predictor and a pruned folder, each written by searchlab itself."""
    root = tmp_path_factory.mktemp("pristine")
    runner.create_run(root / "run", space="bits", strategy="evolution", evaluator="weighted-ones",
                      space_config={"length": 12}, strategy_config={"population": 6, "sample_size": 2},
                      evaluator_config={}, seed=1, budget=runner.Budget(max_evals=10), device="cpu")
    runner.run(root / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["predictor", "train", "--kind", "renas", "--labels", "30", "--seed", "1", "--renas-epochs", "1",
                     "--out", str(root / "predictor"), "--json"]) == 0
    from searchlab.search_spaces.classifiers import build_classifier
    from searchlab.search_spaces.filter_masks import analyse
    from searchlab.search_spaces.filter_masks.pruned import write_pruned

    net = build_classifier("lenet5")
    n_bits = analyse(net, torch.zeros(1, 1, 28, 28)).n_bits
    write_pruned(root / "pruned", net, model="lenet5", model_kwargs={"num_classes": 10, "in_channels": 1,
                 "image_size": 28}, input_shape=[1, 1, 28, 28], layers=[], genome="1" * n_bits,
                 kept_per_layer={"conv1": [6, 6], "conv2": [16, 16]})
    return root


KINDS = {  # folder -> (files to damage, commands to run on the damaged copy)
    "run": (["run.sqlite"], [["status"], ["trials"], ["report"], ["resume", "--quiet"]]),
    "predictor": (["predictor.json", "weights.safetensors"], [["predict", "{dir}", "--hash", HASH]]),
    "pruned": (["architecture.json", "model.safetensors"], [["pruned"]]),
}


def _damage(src: Path, dest: Path, files: list[str], rng: np.random.Generator) -> None:
    """Copy `src` to `dest` and flip 1 to 4 random bytes of one of `files` (JSON files: within the text)."""
    shutil.copytree(src, dest)
    path = dest / files[int(rng.integers(len(files)))]
    data = bytearray(path.read_bytes())
    for _ in range(int(rng.integers(1, 5))):
        data[int(rng.integers(len(data)))] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


def _argv(command: list[str], folder: Path) -> list[str]:
    if "{dir}" in command:
        return [a.replace("{dir}", str(folder)) for a in command]
    return [command[0], str(folder), *command[1:]]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".sqlite", ".json", ".safetensors")}


def _check(code: int, err: str, argv: list[str]) -> None:
    lines = err.strip().splitlines()
    assert code in (0, 2), (argv, err[-2000:])
    assert "Traceback" not in err and (code == 0 or (len(lines) == 1 and lines[0].startswith("error: "))), \
        (argv, err[-2000:])


@pytest.mark.parametrize("kind", list(KINDS))
def test_random_byte_flips_end_in_exit_0_or_one_line(pristine, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("SEARCHLAB_CACHE_DIR", str(tmp_path / "cache"))
    files, commands = KINDS[kind]
    rng = np.random.default_rng(list(KINDS).index(kind))
    outcomes = {0: 0, 2: 0}
    for case in range(CASES):
        folder = tmp_path / f"{kind}{case}"
        _damage(pristine / kind, folder, files, rng)
        for command in commands[:1 + case % len(commands)]:  # the first command always, the others in turn
            before = _snapshot(folder)
            argv = _argv(command, folder)
            if case < THROUGH_THE_COMMAND_LINE:
                proc = subprocess.run([sys.executable, "-m", "searchlab.cli", *argv], capture_output=True, text=True,
                                      timeout=300)
                code, err = proc.returncode, proc.stderr
            else:
                out, err_io = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err_io):
                    code = main(argv)
                err = err_io.getvalue()
            _check(code, err, argv)
            outcomes[code] += 1
            assert _snapshot(folder) == before, argv  # (the resume's budget is spent: it has nothing to write)
        shutil.rmtree(folder)
    assert outcomes[2] > 0, outcomes  # the flips did damage something
