"""The contracts every built-in space, strategy and evaluator keeps (DESIGN.md, "Core contracts"), checked
on each one registered. A new built-in without a case below fails `test_every_built_in_has_a_case`.

- spaces: genomes are JSON values; `validate` is idempotent and its canonical form has a stable key;
  `mutate` gives a valid genome; `describe` gives a JSON object; garbage is refused with InvalidArchitecture;
- strategies: ask/tell in order; every genome asked is valid; the state is JSON at every step and a fresh
  strategy loaded from it asks exactly what the first one asks next; a failed result is tolerated;
- evaluators: a result with the declared objectives, finite, JSON-safe and the same for the same seed.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from searchlab import registry
from searchlab.engine.assembly import build_evaluator, build_space, build_strategy
from searchlab.commands.common import load_plugins
from searchlab.errors import InvalidArchitecture
from searchlab.protocols import Context, Result
from searchlab.engine.run_config import resolve

DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from golden_runs import tiny_cyclegan_checkpoints  # noqa: E402

# a small configuration of every built-in space (option values by field name, as `searchlab.search` takes them)
SPACES = {
    "nasbench101": {},
    "nasbench201": {},
    "prune": {"data": f"mnist:{DATA / 'mnist_mini'}", "test_size": 200, "val_size": 200, "pretrain_epochs": 1,
              "batch_size": 64, "population": 5},
    "binary": {"net": "vgg-small", "data": f"imagefolder:{DATA / 'cifar10_mini'}", "width_scale": 0.0625,
               "population": 3, "epochs_per_candidate": 1, "train_size": 60, "val_size": 20, "batch_size": 32},
    "sr": {"g0": 16, "slots": 8, "min_blocks": 2, "params": "15k:40k", "train": str(DATA / "set5"), "val_images": 1,
           "val_crop": 48, "patch": 12, "batch_size": 4, "crops_per_image": 2, "epochs_per_candidate": 0.5,
           "population": 3, "elites": 1},
    "cyclegan": {"checkpoints": "{CKPT}", "data": str(DATA / "horse2zebra_mini"), "crop": 16, "population": 3,
                 "fitness": "fidelity"},
    "bits": {"length": 16},
}
# evaluators that are not their space's default: the space and options to check them on
EVALUATORS = {"train": ("nasbench101", {"data": f"imagefolder:{DATA / 'cifar10_mini'}", "epochs": 0.2,
                                        "batch_size": 32, "stem_channels": 8, "modules_per_stack": 1})}


def setup(space: str, strategy: str | None = None, evaluator: str | None = None, extra: dict | None = None,
          tmp: Path | None = None):
    values = {k: v.replace("{CKPT}", str(tiny_cyclegan_checkpoints(tmp / "ckpt"))) if isinstance(v, str) else v
              for k, v in {**SPACES[space], **(extra or {})}.items()}
    config = resolve(space, values, strategy=strategy, evaluator=evaluator).to_json()
    ctx = Context(run_dir=tmp, seed=0, device="cpu")
    return config, ctx


def built_in(table: dict) -> list[str]:
    load_plugins()
    return sorted(name for name, e in table.items() if e.module.startswith("searchlab."))


def test_every_built_in_has_a_case():
    for name in built_in(registry.spaces()):
        assert name in SPACES, f"built-in space {name!r} has no contract case in tests/test_contracts.py"
    for name in built_in(registry.evaluators()):
        entry = registry.evaluator(name)
        assert name in EVALUATORS or entry.spaces, f"built-in evaluator {name!r} has no contract case"


# spaces ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=sorted(SPACES))
def space(request, tmp_path_factory):
    load_plugins()
    config, ctx = setup(request.param, tmp=tmp_path_factory.mktemp(request.param))
    return build_space(config, ctx)


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


# strategies -----------------------------------------------------------------------------------------

def strategy_cases() -> list[tuple[str, str]]:
    load_plugins()
    cases = []
    for name in built_in(registry.strategies()):
        spaces = registry.strategy(name).spaces or ("bits", "nasbench101")
        cases += [(name, s) for s in spaces if s in SPACES]
    return cases


def synthetic(space, genome, objectives: dict[str, str], failed: bool = False) -> Result:
    """A result that depends on the genome only: its key hashed into [0, 1) for every objective."""
    if failed:
        return Result.failed("synthetic failure")
    u = int(hashlib.sha1(space.key(genome).encode()).hexdigest()[:8], 16) / 2**32
    return Result("ok", {name: (30.0 + u if name == "psnr" else u) for name in objectives})


def drive(strategy, space, objectives, tells: int, told: int = 0) -> list[str]:
    """Ask three at a time, tell in order (every fifth a failure); the keys asked."""
    keys = []
    while len(keys) < tells:
        batch = strategy.ask(3)
        if not batch:
            break
        for g in batch:
            keys.append(space.key(space.validate(g)))
            strategy.tell(g, synthetic(space, g, objectives, failed=(told + len(keys)) % 5 == 0))
            json.dumps(strategy.state_dict(), allow_nan=False)
    return keys


@pytest.mark.parametrize("name,space_name", strategy_cases())
def test_a_strategy_is_replayable_from_its_json_state(name, space_name, tmp_path):
    config, ctx = setup(space_name, strategy=name, tmp=tmp_path)
    space = build_space(config, ctx)
    objectives = dict(build_evaluator(space, config, ctx).objectives)
    first = build_strategy(space, config, objectives, seed=3)
    head = drive(first, space, objectives, 7)
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = build_strategy(space, config, objectives, seed=99)
    second.load_state_dict(state)
    assert len(head) >= 7
    assert drive(first, space, objectives, 8, len(head)) == drive(second, space, objectives, 8, len(head)), name


# evaluators -----------------------------------------------------------------------------------------

def evaluator_cases() -> list[tuple[str, str, dict]]:
    load_plugins()
    cases = []
    for name in built_in(registry.evaluators()):
        if name in EVALUATORS:
            cases.append((name, *EVALUATORS[name]))
        else:
            cases += [(name, s, {}) for s in registry.evaluator(name).spaces if s in SPACES]
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name,space_name,extra", evaluator_cases())
def test_an_evaluator_scores_its_declared_objectives_reproducibly(name, space_name, extra, tmp_path):
    config, ctx = setup(space_name, evaluator=name, extra=extra, tmp=tmp_path)
    space = build_space(config, ctx)
    evaluator = build_evaluator(space, config, ctx)
    genome = space.validate(space.sample(np.random.default_rng(5)))
    first = evaluator.evaluate(genome, seed=11, device="cpu")
    again = evaluator.evaluate(genome, seed=11, device="cpu")
    assert first.ok, first.error
    assert set(evaluator.objectives) <= set(first.objectives)
    assert all(np.isfinite(v) for v in first.objectives.values())
    assert Result.from_json(json.loads(json.dumps(first.to_json(), allow_nan=False))) == first
    assert again.objectives == pytest.approx(first.objectives, rel=1e-6)
