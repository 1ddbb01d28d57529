"""Engine overhead: 10,000 trials with a zero-cost evaluator, stored vs kept in memory.

The engine's per-trial work is ask, insert `asked`, mark running, evaluate, tell, and one transaction
with the result and the strategy snapshot. The baseline is the same ask/evaluate/tell loop in memory.
Target: median engine time <= 1 ms per trial.

    python bench/engine_overhead.py [--trials 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlab.evolvers import aging_evolution, random_search  # noqa: E402,F401
from searchlab import registry  # noqa: E402
from searchlab.engine import runner
from searchlab.engine.assembly import build_evaluator, build_space, build_strategy  # noqa: E402
from searchlab.protocols import Context, Result  # noqa: E402


class Bits:
    """64-bit strings: a space large enough that keys rarely repeat."""

    name = "bench-bits"

    def sample(self, rng):
        return [int(b) for b in rng.integers(0, 2, 64)]

    def mutate(self, genome, rng):
        child = list(genome)
        child[int(rng.integers(64))] ^= 1
        return child

    def validate(self, genome):
        return genome

    def key(self, genome):
        return "".join(map(str, genome))

    def describe(self, genome):
        return {}


@dataclass(frozen=True)
class ZeroCost:
    objectives = {"accuracy": "max"}

    def evaluate(self, genome, *, seed, device):
        return Result("ok", {"accuracy": float(sum(genome))}, {"seconds": 0.0})


registry.register_space("bench-bits", factory=lambda c, ctx: Bits(), default_strategy="random",
                        default_evaluator="zero-cost", help="64-bit strings (benchmark)")
registry.register_evaluator("zero-cost", factory=lambda s, c, ctx: ZeroCost(), help="free evaluator (benchmark)")


def in_memory(strategy_name: str, trials: int, config: dict) -> list[float]:
    ctx = Context(seed=0, device="cpu")
    space = build_space(config, ctx)
    evaluator = build_evaluator(space, config, ctx)
    strategy = build_strategy(space, config, evaluator.objectives, 0)
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        genome = strategy.ask(1)[0]
        genome = space.validate(genome)
        space.key(genome)
        strategy.tell(genome, evaluator.evaluate(genome, seed=0, device="cpu"))
        times.append(time.perf_counter() - start)
    return times


def engine(strategy_name: str, trials: int, config: dict, root: Path) -> list[float]:
    run_dir = root / strategy_name
    runner.create_run(run_dir, space="bench-bits", strategy=strategy_name, evaluator="zero-cost", space_config={},
                      strategy_config=config.get("strategy_config", {}), evaluator_config={}, seed=0,
                      budget=runner.Budget(max_evals=trials), device="cpu")
    stamps = []
    runner.run(run_dir, progress=lambda info: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    print(f"{'strategy':12s} {'engine median':>14s} {'engine p90':>11s} {'memory median':>14s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy_config in (("random", {}), ("evolution", {"population": 50, "sample_size": 10})):
            config = {"space": "bench-bits", "strategy": name, "evaluator": "zero-cost", "space_config": {},
                      "strategy_config": strategy_config, "evaluator_config": {}}
            mem = in_memory(name, args.trials, config)
            eng = engine(name, args.trials, config, Path(tmp))
            em, mm = statistics.median(eng), statistics.median(mem)
            p90 = statistics.quantiles(eng, n=10)[-1]
            print(f"{name:12s} {em * 1e3:11.3f} ms {p90 * 1e3:8.3f} ms {mm * 1e3:11.3f} ms {em / mm:6.1f}x"
                  f"   {'OK' if em <= 1e-3 else 'ABOVE TARGET'} (target: median <= 1 ms)")


if __name__ == "__main__":
    main()
