"""A search space and evaluator used only by the engine tests: bit strings scored by a fixed formula.

The engine tests need a space that is deterministic, instant (or slowed by a configurable sleep so a
test can kill a run mid-trial) and independent of any benchmark data.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from dataclasses import dataclass

import numpy as np

from searchlab import registry
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt
from searchlab.protocols import Result


@dataclass(frozen=True)
class BitsConfig:
    """bit-string space options"""

    length: int = opt(24, help="number of bits")

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ConfigError("--length must be at least 2")


class BitsSpace:
    name = "bits"

    def __init__(self, config: BitsConfig):
        self.length = config.length

    def sample(self, rng):
        return [int(b) for b in rng.integers(0, 2, self.length)]

    def mutate(self, genome, rng):
        child = list(genome)
        i = int(rng.integers(self.length))
        child[i] = 1 - child[i]
        return child

    def validate(self, genome):
        if not isinstance(genome, list) or len(genome) != self.length or any(b not in (0, 1) for b in genome):
            raise InvalidArchitecture(f"a genome must be a list of {self.length} bits")
        return genome

    def key(self, genome):
        return "".join(map(str, genome))

    def describe(self, genome):
        return {"ones": sum(genome)}


@dataclass(frozen=True)
class SlowConfig:
    """bit-string evaluator options"""

    sleep: float = opt(0.0, help="seconds each evaluation sleeps")
    kill_at: str = opt("", help="genome key whose evaluation kills its own process (a worker dying mid-trial)")
    kill_once: bool = opt(True, help="kill only at the first evaluation of --kill-at (marked by a file in the run)")


class WeightedOnes:
    """accuracy = weighted count of ones, plus a seeded jitter so per-trial seeds matter."""

    objectives = {"accuracy": "max", "ones": "min"}

    def __init__(self, config: SlowConfig, run_dir=None):
        self.sleep, self.config = config.sleep, config
        self.marker = None if run_dir is None else Path(run_dir) / "worker-killed"

    def evaluate(self, genome, *, seed, device):
        if self.sleep:
            time.sleep(self.sleep)
        if self.config.kill_at and "".join(map(str, genome)) == self.config.kill_at:
            if not (self.config.kill_once and self.marker is not None and self.marker.exists()):
                if self.marker is not None:
                    self.marker.write_text("killed")
                os.kill(os.getpid(), signal.SIGKILL)
        weights = np.linspace(1.0, 2.0, len(genome))
        jitter = np.random.default_rng(seed).normal(0, 0.01)
        return Result("ok", {"accuracy": float(np.dot(weights, genome) + jitter), "ones": float(sum(genome))},
                      {"epochs": 1.0, "simulated_seconds": 10.0})


registry.register_space("bits", factory=lambda config, ctx: BitsSpace(config), config=BitsConfig,
                        default_strategy="evolution", default_evaluator="weighted-ones",
                        help="bit strings (engine tests)")
registry.register_evaluator("weighted-ones", factory=lambda space, config, ctx: WeightedOnes(config, ctx.run_dir),
                            config=SlowConfig, help="weighted count of ones (engine tests)", spaces=["bits"])
