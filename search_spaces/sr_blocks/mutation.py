"""Mutation of a block chain: used bits, block types (optionally weighted by block credits) and block
hyper-parameters, one gene changed at a time; and a random block for new slots."""

from __future__ import annotations

from typing import Any

import numpy as np

from searchlab.search_spaces.sr_blocks.blocks import BLOCK_TYPES, CONVS, GENES, GROWTHS, OUTS


def _other(choices: tuple, current: Any, rng: np.random.Generator, probs: np.ndarray | None = None) -> Any:
    """A choice different from `current`, uniform or with the given (renormalised) probabilities."""
    options = [c for c in choices if c != current]
    if probs is None:
        return options[int(rng.integers(len(options)))]
    p = np.array([probs[choices.index(c)] for c in options], dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(options), 1.0 / len(options))
    return options[int(rng.choice(len(options), p=p))]


def mut_blocks(genome: dict, rng: np.random.Generator, *, rate: float | None = None,
               type_probs: np.ndarray | None = None, use_probs: np.ndarray | None = None) -> dict:
    """Mutate slots: each gene of each slot changes with probability `rate` (default 1/slots).

    A mutated type gene is redrawn from `type_probs` [len(BLOCK_TYPES)] (uniform when None), so it may
    keep its type; a mutated hyper-parameter always changes. `use_probs` [slots] is the
    probability that a slot is used, and scales its used-bit flip: on with 2 p rate, off with
    2 (1 - p) rate (both equal `rate` at p = 1/2). At least one gene always changes.
    """
    blocks = [dict(b) for b in genome["blocks"]]
    n = len(blocks)
    rate = 1.0 / n if rate is None else rate
    changed = False
    for i, b in enumerate(blocks):
        p_use = 0.5 if use_probs is None else float(use_probs[i])
        flip = rate * 2 * (p_use if not b["used"] else 1 - p_use)
        if rng.random() < min(1.0, flip):
            b["used"], changed = 1 - b["used"], True
        if rng.random() < rate:  # resample the type (credits: favoured types are drawn, and kept, more often)
            p = np.full(len(BLOCK_TYPES), 1 / len(BLOCK_TYPES)) if type_probs is None else np.asarray(type_probs)
            kind = BLOCK_TYPES[int(rng.choice(len(BLOCK_TYPES), p=p / p.sum()))]
            changed = changed or kind != b["type"]
            b["type"] = kind
        for gene, choices in (("convs", CONVS), ("growth", GROWTHS), ("out", OUTS)):
            if rng.random() < rate:
                b[gene], changed = _other(choices, b[gene], rng), True
    if not changed:
        i = int(rng.integers(n))
        gene = GENES[int(rng.integers(len(GENES)))]
        if gene == "used":
            blocks[i]["used"] = 1 - blocks[i]["used"]
        elif gene == "type":
            blocks[i]["type"] = _other(BLOCK_TYPES, blocks[i]["type"], rng, type_probs)
        else:
            choices = {"convs": CONVS, "growth": GROWTHS, "out": OUTS}[gene]
            blocks[i][gene] = _other(choices, blocks[i][gene], rng)
    return {"blocks": blocks}


def block_steps(genome: dict, direction: int, min_blocks: int) -> list[dict]:
    """Every genome one unit smaller (direction -1) or larger (+1): one used block's convs, growth or out
    one choice down or up, or one slot left out (never below `min_blocks` used) or taken in."""
    blocks = genome["blocks"]
    steps = []
    for i, b in enumerate(blocks):
        if b["used"]:
            for gene, choices in (("convs", CONVS), ("growth", GROWTHS), ("out", OUTS)):
                j = choices.index(b[gene]) + direction
                if 0 <= j < len(choices):
                    steps.append((i, gene, choices[j]))
        if direction < 0 and b["used"] and sum(x["used"] for x in blocks) > min_blocks:
            steps.append((i, "used", 0))
        if direction > 0 and not b["used"]:
            steps.append((i, "used", 1))
    out = []
    for i, gene, value in steps:
        changed = [dict(b) for b in blocks]
        changed[i][gene] = value
        out.append({"blocks": changed})
    return out


def step_block(genome: dict, rng: np.random.Generator, direction: int, min_blocks: int) -> dict | None:
    """One of `block_steps` at random (None when there is none): the unit step of the GA core's budget rule."""
    steps = block_steps(genome, direction, min_blocks)
    return steps[int(rng.integers(len(steps)))] if steps else None


def random_block(rng: np.random.Generator, used: int) -> dict:
    return {"used": int(used), "type": BLOCK_TYPES[int(rng.integers(len(BLOCK_TYPES)))],
            "convs": int(CONVS[int(rng.integers(len(CONVS)))]),
            "growth": int(GROWTHS[int(rng.integers(len(GROWTHS)))]),
            "out": int(OUTS[int(rng.integers(len(OUTS)))])}
