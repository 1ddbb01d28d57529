"""The finalize hook of the compression spaces: the evaluator that scored the run does the final step.

Training and writing the best candidate needs what the evaluator holds (its data splits, its training
recipe), and a space cannot import the searches built on it (rooms import downwards only), so a space
registers `by_evaluator` and each search's evaluator has a `finalize(space, best_trial, ctx)` method.
"""

from __future__ import annotations

from typing import Any


def by_evaluator(space: Any, evaluator: Any, best_trial: dict, ctx: Any, **extra: Any) -> dict | None:
    """The evaluator's final step for the best trial, or None when the run's evaluator has none."""
    step = getattr(evaluator, "finalize", None)
    return None if step is None else step(space, best_trial, ctx, **extra)
