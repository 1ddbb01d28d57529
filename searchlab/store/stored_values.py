"""Type checks for values read back from a run store (see `RunStore`): what each stored field must be,
so that a damaged one is reported as damaged instead of failing later in a strategy or a report."""

from __future__ import annotations

from typing import Any

from searchlab.protocols import Result


def not_text(value: Any) -> Any:
    """Raise the error for a column that should hold text but holds a number or NULL."""
    raise ValueError(f"expected text, found {type(value).__name__} {value!r:.40}")


def schema_version(value: Any) -> int | None:
    """The stored schema version (text holding a whole number), or None when it is not one."""
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else str(value)
        return int(text) if text.strip().isdigit() else None
    except ValueError:
        return None


def stored_result(data: dict) -> Result:
    """A stored result, its types checked (objectives and cost map names to numbers)."""
    for part in ("objectives", "cost"):
        values = data.get(part, {})
        if not isinstance(values, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
            raise TypeError(f"{part} must map names to numbers")
    if data.get("error") is not None and not isinstance(data["error"], str):
        raise TypeError("error must be text")
    return Result.from_json(data)


_CONFIG_TYPES = {"space": str, "strategy": str, "evaluator": str, "space_config": dict, "strategy_config": dict,
                 "evaluator_config": dict, "budget": dict, "backend": str, "device": str, "objectives": dict}
# (the plug-in list is checked where it is used: registry.trusted_plugins)


def config_problem(config: dict) -> str | None:
    """What is wrong with the types of a stored configuration's engine fields, or None."""
    for name, kind in _CONFIG_TYPES.items():
        if name in config and not isinstance(config[name], kind):
            return f"{name} must be a {kind.__name__}, found {type(config[name]).__name__}"
    for name in ("workers", "window"):
        value = config.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"{name} must be a whole number >= 1, found {value!r:.40}"
    budget = config.get("budget", {})
    if set(budget) - {"max_evals", "max_time", "max_epochs", "max_cost"}:
        return f"budget holds unknown limits {sorted(set(budget))[:4]}"
    for name, value in budget.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"budget {name} must be a number, found {value!r:.40}"
    return None
