"""Seeds and generators: every random choice flows from an explicit, JSON-serialisable generator."""

from __future__ import annotations

import numpy as np


def trial_seed(run_seed: int, trial_id: int) -> int:
    """The evaluation seed of a trial, derived from (run seed, trial id) so a re-run repeats it."""
    return int(np.random.SeedSequence([int(run_seed), int(trial_id)]).generate_state(1, dtype=np.uint32)[0])


def make_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(int(seed)))


def rng_state(rng: np.random.Generator) -> dict:
    """The generator's full state as JSON (PCG64 state is two big integers)."""
    return rng.bit_generator.state


def rng_from_state(state: dict) -> np.random.Generator:
    bit_gen = np.random.PCG64()
    bit_gen.state = state
    return np.random.Generator(bit_gen)
