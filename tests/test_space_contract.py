"""The contract every search space keeps (DESIGN.md, "Core contracts"), checked on each built-in space.

Genomes are JSON values; `validate` is idempotent and its canonical form has a stable key; `mutate`
gives a valid genome; `describe` gives a JSON object; garbage is refused with InvalidArchitecture.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from searchlab import cli
from searchlab import options, registry
from searchlab.errors import InvalidArchitecture
from searchlab.protocols import Context

DATA = Path(__file__).resolve().parent / "data"
SPACES = {
    "nasbench101": {},
    "nasbench201": {},
    "binary": {"net": "vgg-small"},
    "sr": {},
    "prune": {"model": "lenet5", "data": f"mnist:{DATA / 'mnist_mini'}", "pretrain_epochs": 1, "test_size": 200,
              "val_size": 200},
    "bits": {"length": 16},
}


@pytest.fixture(scope="module", params=sorted(SPACES))
def space(request, tmp_path_factory):
    cli._load_plugins()
    entry = registry.space(request.param)
    ctx = Context(run_dir=tmp_path_factory.mktemp(request.param), seed=0, device="cpu")
    return entry.factory(options.build(entry.config, SPACES[request.param]), ctx)


def test_sample_validate_key(space):
    rng = np.random.default_rng(0)
    keys = set()
    for i in range(20):
        genome = space.validate(space.sample(rng))
        again = space.validate(json.loads(json.dumps(genome)))     # survives the run store's JSON
        assert again == genome and space.key(again) == space.key(genome)
        if i < 2:  # describe may build the network: keep it to a couple
            assert json.loads(json.dumps(space.describe(genome)))
        keys.add(space.key(genome))
    assert len(keys) > 10, "sampling should cover the space, not repeat one genome"


def test_mutate_gives_valid_genomes_that_usually_differ(space):
    rng = np.random.default_rng(1)
    genome = space.validate(space.sample(rng))
    changed = 0
    for _ in range(20):
        child = space.validate(space.mutate(genome, rng))
        changed += space.key(child) != space.key(genome)
    assert changed >= 15


def test_garbage_is_refused(space):
    for garbage in ("garbage", None, {"matrix": 1}, [[-1]]):
        with pytest.raises(InvalidArchitecture):
            space.validate(garbage)
