"""Whether a compressed network's quality fell to its floor or far below the network it came from.

One rule for every compression search, so that a run which ends at chance accuracy (or worse than
bicubic upscaling, or no closer to the full generator than a flat grey image) never passes without a
word: the final summary gets `quality_status` (0 fine, 1 not) and a `warning` that says what fell and
what to try, and the command prints the warning on stderr.
"""

from __future__ import annotations


def check(metric: str, after: float, *, floor: float, floor_name: str, near: float = 0.0,
          reference: float | None = None, reference_name: str = "", advice: str = "", fmt=lambda v: f"{v:.4g}") -> dict:
    """{"quality_status": 0} or {"quality_status": 1, "warning": ...}.

    Not fine: `after` is within `near` of `floor` (chance, bicubic, a flat image) or below it, or, with a
    `reference` above that, `after` kept less than half of the reference's margin over the floor. When the
    reference is itself at the floor, the warning says so (nothing was there to keep; `advice` is left out).
    """
    at_floor = lambda value: value <= floor + near  # noqa: E731
    where = f"{'at or near' if near else 'no better than'} {floor_name} ({fmt(floor)})"
    if at_floor(after) and reference is not None and at_floor(reference):
        return {"quality_status": 1, "warning": f"{metric} {fmt(after)} is {where}, and so is {reference_name}'s "
                                                f"({fmt(reference)}): it had nothing to keep; train it first"}
    if at_floor(after):
        why = f"{metric} {fmt(after)} is {where}"
    elif reference is not None and after - floor < 0.5 * (reference - floor):
        why = (f"{metric} fell from {fmt(reference)} ({reference_name}) to {fmt(after)}, most of the way to "
               f"{floor_name} ({fmt(floor)})")
    else:
        return {"quality_status": 0}
    return {"quality_status": 1, "warning": why + (f": {advice}" if advice else "")}


def chance_margin(chance: float) -> float:
    """How close to chance an accuracy counts as chance: a tenth of the way from chance to 100%."""
    return 0.1 * (1.0 - chance)


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def decibels(value: float) -> str:
    return f"{value:.2f} dB"
