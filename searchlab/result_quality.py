"""Whether a compressed network's quality fell to its floor or far below the network it came from.

One rule for every compression search, so that a run which ends at chance accuracy (or worse than
bicubic upscaling, or no closer to the full generator than a flat grey image) never passes without a
word: the final summary gets `quality_status` (0 fine, 1 not) and a `warning` that says what fell and
what to try, and the command prints the warning on stderr.
"""

from __future__ import annotations


def check(metric: str, after: float, *, floor: float, floor_name: str, reference: float | None = None,
          reference_name: str = "", advice: str = "", fmt=lambda v: f"{v:.4g}") -> dict:
    """{"quality_status": 0} or {"quality_status": 1, "warning": ...}.

    Not fine: `after` is at or below `floor` (chance, bicubic, a flat image), or, with a `reference`
    above the floor, `after` kept less than half of the reference's margin over the floor.
    """
    if after <= floor:
        why = f"{metric} {fmt(after)} is no better than {floor_name} ({fmt(floor)})"
    elif reference is not None and reference > floor and after - floor < 0.5 * (reference - floor):
        why = (f"{metric} fell from {fmt(reference)} ({reference_name}) to {fmt(after)}, most of the way to "
               f"{floor_name} ({fmt(floor)})")
    else:
        return {"quality_status": 0}
    return {"quality_status": 1, "warning": why + (f": {advice}" if advice else "")}


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def decibels(value: float) -> str:
    return f"{value:.2f} dB"
