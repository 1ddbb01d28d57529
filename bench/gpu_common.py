"""What the parts of the GPU check share: its state and figures, the data (decoded once), the trainer's
speed, searches run in the work folder. The driver and the one command are in gpu_check.py."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "data"

import torch  # noqa: E402

PLUGINS = ["searchlab.evolvers.filter_pruning.plugin", "searchlab.evolvers.binary_channel_search.plugin",
           "searchlab.evolvers.sr_block_search.plugin"]


@dataclass
class Check:
    """Shared state of one check run: settings, output folder, data read once, figures so far."""

    args: argparse.Namespace
    device: torch.device
    work: Path
    out: Path
    figures: list[dict] = field(default_factory=list)
    shared: dict = field(default_factory=dict)

    @property
    def smoke(self) -> bool:
        return self.args.smoke

    def figure(self, part: str, name: str, value, unit: str = "", note: str = "") -> None:
        row = {"part": part, "name": name, "value": value, "unit": unit, "note": note}
        self.figures.append(row)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"[{part}] {name}: {shown}{' ' + unit if unit else ''}{'   (' + note + ')' if note else ''}", flush=True)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def find(check: Check, name: str, fixture: str) -> Path:
    """A data file or folder: the fixture under --smoke, else DIR/name or its place in ../shared/data."""
    if check.smoke:
        return FIXTURES / fixture
    base = Path(check.args.data)
    for candidate in (base / name, base / "cifar10" / name, base / "sr" / name, base / "unpaired" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found under {base}; pass --data DIR holding it")


def cifar_spec(check: Check) -> str:
    """The CIFAR-10 spec for searches: the binary batches written by `cifar` once it has run (read in about
    a second, where decoding the JPEGs again would take 20), else the JPEG archive (the fixture in --smoke)."""
    if "cifar_bin" in check.shared:
        return f"cifar10:{check.shared['cifar_bin']}"
    path = find(check, "cifar10_jpg.tar.gz", "cifar10_mini")
    return f"imagefolder:{path}" if check.smoke else f"cifar10:{path}"


def cifar(check: Check):
    """CIFAR-10 (train, test), decoded once per check and written as binary batches to the work folder."""
    if "cifar" not in check.shared:
        from searchlab.training.data import CIFAR10_CLASSES, load_classification

        start = time.perf_counter()
        data = load_classification(cifar_spec(check))
        train, test = data.train, data.test
        if check.smoke:  # 5 training images of each class, 2 test images (finalize times CPU latency on them)
            train, test = train.subset(range(0, len(train), 4)), test.subset(range(0, len(test), 25))
        check.shared["cifar"] = (train, test)
        check.figure("data", "CIFAR-10 decoded", round(time.perf_counter() - start, 1), "s",
                     f"{len(train)} train + {len(test)} test images")
        if list(train.classes) == list(CIFAR10_CLASSES):
            folder = check.work / "cifar-10-batches-bin"
            folder.mkdir(parents=True, exist_ok=True)
            for name, part in (("data_batch_1.bin", train), ("test_batch.bin", test)):
                records = torch.cat([part.y.to(torch.uint8)[:, None], part.x.reshape(len(part), -1)], dim=1)
                (folder / name).write_bytes(records.numpy().tobytes())
            check.shared["cifar_bin"] = str(folder)
    return check.shared["cifar"]


def build(name: str, seed: int = 0):
    """A built-in classifier with weights drawn from `seed`."""
    from searchlab.search_spaces.classifiers import build_classifier

    torch.manual_seed(seed)
    return build_classifier(name)


def trainer_rate(model, train, *, steps: int, batch: int, check: Check, **settings) -> float:
    """Images/s of the shared trainer over `steps` steps after a 2-step warm-up (and compile, if asked)."""
    from dataclasses import replace

    from searchlab.training.trainer import TrainConfig, train_classifier

    cfg = TrainConfig(epochs=1000, batch_size=batch, lr=0.1, max_steps=2, augment="crop_flip", **settings)
    train_classifier(model, train, cfg, seed=0, device=check.device)
    stats = train_classifier(model, train, replace(cfg, max_steps=steps), seed=1, device=check.device)
    check.sync()
    return stats.steps * batch / stats.seconds


def run_search(check: Check, name: str, *, space: str, strategy: str, evaluator: str, space_config: dict,
               strategy_config: dict, evaluator_config: dict, max_time: float, seed: int = 0):
    """Create and run a search in the work folder; (run folder, outcome, wall seconds of the run loop, trials)."""
    from searchlab import registry
    from searchlab.engine import runner
    from searchlab.store.run_store import RunStore

    registry.load_plugins(PLUGINS)
    run_dir = check.work / name
    runner.create_run(run_dir, space=space, strategy=strategy, evaluator=evaluator, space_config=space_config,
                      strategy_config=strategy_config, evaluator_config=evaluator_config, seed=seed,
                      budget=runner.Budget(max_time=max_time), device=str(check.device), plugins=PLUGINS)
    start = time.perf_counter()
    outcome = runner.run(run_dir, plugins=PLUGINS)
    wall = time.perf_counter() - start
    with RunStore.open(run_dir) as store:
        trials = [t for t in store.trials() if t.result is not None]
    return run_dir, outcome, wall, trials
