"""The `sr` search space: slots of blocks under a parameter range (and optional mult-add cap), sampled,
mutated and repaired by repeated mutation; plus hand-designed chains (uniform, the RDN baseline)."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable

import numpy as np

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.search_spaces.sr_blocks.blocks import (BLOCK_TYPES, CONVS, GROWTHS, OUTS, PAPER_OUTPUT, SCALES,
                                                      block_label, count_mult_adds, count_params, used_blocks)
from searchlab.search_spaces.sr_blocks.mutation import mut_blocks, random_block
from searchlab.search_spaces.sr_blocks.network import SRNet


def parse_size(text: str | int | float) -> float:
    """'300k' -> 300000, '1.2M' -> 1200000, '73.4G' -> 7.34e10."""
    if isinstance(text, (int, float)):
        return float(text)
    t = str(text).strip().lower()
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(t[-1:], 1.0)
    try:
        return float(t[:-1] if t[-1:] in "kmg" else t) * mult
    except ValueError:
        raise ConfigError(f"malformed size {text!r}; write e.g. 300k, 1.2M or 73.4G") from None


def parse_range(text: str) -> tuple[float, float]:
    """'300k:330k' -> (300000, 330000); '' -> no limit."""
    if not text:
        return 0.0, math.inf
    if ":" not in text:
        raise ConfigError(f"malformed range {text!r}; write LOW:HIGH, e.g. --params 300k:330k")
    lo_text, hi_text = text.split(":", 1)
    lo = parse_size(lo_text) if lo_text.strip() else 0.0
    hi = parse_size(hi_text) if hi_text.strip() else math.inf
    if lo < 0 or hi < lo:
        raise ConfigError(f"empty range {text!r}: LOW must be <= HIGH, e.g. --params 300k:330k")
    return lo, hi


class SRBlockSpace:
    """Block chains for x2/x3/x4 super-resolution with a parameter range (and optional mult-add cap)."""

    name = "sr"

    def __init__(self, *, scale: int = 2, g0: int = 32, slots: int = 20, min_blocks: int = 4,
                 params: str = "300k:330k", max_mult_adds: float = 0.0, groups: int = 4,
                 skip: str = "bicubic", repair_tries: int = 3000, params_flag: str | None = None) -> None:
        if scale not in SCALES:
            raise ConfigError(f"scale must be 2, 3 or 4, got {scale}")
        if g0 < 8 or g0 % groups:
            raise ConfigError(f"g0 must be >= 8 and a multiple of groups ({groups}), got {g0}")
        if not 1 <= min_blocks <= slots:
            raise ConfigError(f"min_blocks must be between 1 and slots ({slots}), got {min_blocks}")
        if skip not in ("bicubic", "none"):
            raise ConfigError(f"skip must be bicubic or none, got {skip!r}")
        self.scale, self.g0, self.slots, self.min_blocks = scale, g0, slots, min_blocks
        self.groups, self.skip, self.repair_tries = groups, skip, repair_tries
        self.params_range = parse_range(params)
        self.params_text = params
        self.params_flag = params_flag or f"--params {params}"  # how errors name the limit the user gave
        self.budget = None  # a --max-params budget, met by the GA core (config.make_space sets it)
        self.max_mult_adds = float(max_mult_adds)
        self._check_reachable()

    # counting -------------------------------------------------------------------------------------
    def params(self, genome: dict) -> int:
        return count_params(genome, g0=self.g0, scale=self.scale, groups=self.groups)

    def mult_adds(self, genome: dict, output: tuple[int, int] = PAPER_OUTPUT) -> float:
        return count_mult_adds(genome, g0=self.g0, scale=self.scale, groups=self.groups, output=output)

    def _check_reachable(self) -> None:
        smallest = {"used": 1, "type": "SRDB", "convs": CONVS[0], "growth": GROWTHS[0], "out": OUTS[0]}
        largest = {"used": 1, "type": "SRDB", "convs": CONVS[-1], "growth": GROWTHS[-1], "out": OUTS[-1]}
        low = min(self.params({"blocks": [dict(smallest, type=t)] * self.min_blocks}) for t in BLOCK_TYPES)
        high = max(self.params({"blocks": [dict(largest, type=t)] * self.slots}) for t in BLOCK_TYPES)
        lo, hi = self.params_range
        if hi < low or lo > high:
            raise ConfigError(f"no network meets {self.params_flag}: with g0={self.g0}, x{self.scale} "
                              f"and at least {self.min_blocks} blocks they range from about {low / 1e3:.0f}k to "
                              f"{high / 1e3:.0f}k parameters; choose a range inside that")

    def violation(self, genome: dict) -> float:
        """How far a genome is from the constraints (0 = feasible), in relative units."""
        lo, hi = self.params_range
        p = self.params(genome)
        v = max(0.0, (lo - p) / max(lo, 1.0), (p - hi) / max(hi, 1.0))
        if self.max_mult_adds:
            v += max(0.0, self.mult_adds(genome) / self.max_mult_adds - 1.0)
        missing = self.min_blocks - len(used_blocks(genome))
        return v + max(0, missing)

    # protocol ---------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        n_used = int(rng.integers(self.min_blocks, self.slots + 1))
        used = np.zeros(self.slots, dtype=int)
        used[rng.choice(self.slots, size=n_used, replace=False)] = 1
        genome = {"blocks": [random_block(rng, u) for u in used]}
        return self.repair(genome, rng)

    def mutate(self, genome: dict, rng: np.random.Generator) -> dict:
        return self.repair(mut_blocks(self.validate(genome), rng), rng)

    def repair(self, genome: dict, rng: np.random.Generator,
               mutate: Callable[[dict, np.random.Generator], dict] | None = None) -> dict:
        """Mutate repeatedly (keeping a mutant when it is no further from feasible) until the genome
        meets the parameter range, the mult-add cap and the minimum number of blocks."""
        mutate = mutate or mut_blocks
        best, v = genome, self.violation(genome)
        for _ in range(self.repair_tries):
            if v == 0:
                return self.validate(best)
            cand = mutate(best, rng)
            cv = self.violation(cand)
            if cv <= v:
                best, v = cand, cv
        if v == 0:
            return self.validate(best)
        limit = f"params in {self.params_text}" if self.params_flag.startswith("--params") else self.params_flag
        raise ConfigError(f"found no network with {limit}"
                          f"{f' and at most {self.max_mult_adds / 1e9:g}G mult-adds' if self.max_mult_adds else ''}"
                          f" after {self.repair_tries} mutations; widen --params or change --g0/--min-blocks")

    def validate(self, genome: Any) -> dict:
        if not isinstance(genome, dict) or not isinstance(genome.get("blocks"), list):
            raise InvalidArchitecture('an SR genome is {"blocks": [slot, ...]}')
        if len(genome["blocks"]) != self.slots:
            raise InvalidArchitecture(f"the genome has {len(genome['blocks'])} slots, the space {self.slots}")
        out = []
        for i, b in enumerate(genome["blocks"]):
            try:
                slot = {"used": int(b["used"]), "type": str(b["type"]), "convs": int(b["convs"]),
                        "growth": int(b["growth"]), "out": int(b["out"])}
            except (KeyError, TypeError, ValueError):
                raise InvalidArchitecture(f"slot {i} needs used, type, convs, growth and out") from None
            for gene, choices in (("used", (0, 1)), ("type", BLOCK_TYPES + ("RDB",)), ("convs", CONVS),
                                  ("growth", GROWTHS), ("out", OUTS)):
                if slot[gene] not in choices:
                    raise InvalidArchitecture(f"slot {i}: {gene} must be one of {choices}, got {slot[gene]!r}")
            out.append(slot)
        if sum(s["used"] for s in out) < 1:
            raise InvalidArchitecture("at least one block must be used")
        return {"blocks": out}

    def key(self, genome: dict) -> str:
        g = self.validate(genome)
        return json.dumps([[b["type"], b["convs"], b["growth"], b["out"]] for b in used_blocks(g)],
                          separators=(",", ":"))

    def describe(self, genome: dict) -> dict:
        g = self.validate(genome)
        return {"params": self.params(g), "mult_adds": self.mult_adds(g), "blocks": len(used_blocks(g)),
                "layout": " ".join(block_label(b) for b in used_blocks(g))}

    def build(self, genome: dict) -> SRNet:
        return SRNet(self.validate(genome), g0=self.g0, scale=self.scale, groups=self.groups, skip=self.skip)


def uniform_chain(kind: str, n: int, *, convs: int, growth: int, out: int, slots: int) -> dict:
    """A genome of `n` identical blocks followed by unused slots (hand-designed baselines)."""
    block = {"used": 1, "type": kind, "convs": convs, "growth": growth, "out": out}
    return {"blocks": [dict(block) for _ in range(n)] + [dict(block, used=0) for _ in range(slots - n)]}


def baseline_rdn(space: SRBlockSpace, target_params: float, *, convs: int = 4, out: int | None = None,
                 blocks: Iterable[int] = range(2, 21)) -> dict:
    """A plain RDN (identical RDB blocks, channels G0) with the parameter count closest to a target."""
    out = space.g0 if out is None else out
    best, gap = None, math.inf
    for n in blocks:
        if n > space.slots:
            break
        for g in GROWTHS:
            genome = uniform_chain("RDB", n, convs=convs, growth=g, out=out, slots=space.slots)
            d = abs(space.params(genome) - target_params)
            if d < gap:
                best, gap = genome, d
    return best  # type: ignore[return-value]
