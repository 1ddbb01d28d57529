"""The genome: a string of '0'/'1', one character per prunable channel group (1 = keep)."""

from __future__ import annotations

import numpy as np

Genome = str


def bits_of(genome: Genome) -> np.ndarray:
    return np.frombuffer(genome.encode("ascii"), dtype=np.uint8) == ord("1")


def genome_of(bits) -> Genome:
    return "".join("1" if b else "0" for b in bits)
