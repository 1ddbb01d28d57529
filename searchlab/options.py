"""Frozen-dataclass configs <-> command-line flags and JSON.

Each space, strategy and evaluator declares its options as a frozen dataclass; the CLI turns every
field into a flag (`lam` -> `--lam`), a config file fills the same fields, and the resolved config is
stored in the run as JSON so `resume` rebuilds exactly the same objects. Field metadata:
`help` (text), `choices`, `parse` (a str -> value function, e.g. `parse_duration`), `flag` (a name
other than the default), `aliases` (old field names still accepted, as flags and in stored configs:
{old name: function turning an old value into the field's value}), `old_default` (for a field added
later: the value runs stored before it existed ran with, so they resume as they started).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from searchlab.errors import ConfigError


def opt(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:
    """A dataclass field with a help text (and optional choices/parse/flag metadata)."""
    meta["help"] = help
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float | int) -> float:
    """'90s', '20m', '2h', '1.5h', '1d' or plain seconds -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"malformed duration {text!r}; write a number with a unit, e.g. 90s, 20m, 2h")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _converter(f: dataclasses.Field, tp: Any):
    if "parse" in f.metadata:
        return f.metadata["parse"]
    base, _ = _unwrap_optional(tp)
    if typing.get_origin(base) in (list, tuple):
        (item,) = typing.get_args(base)[:1]
        return item if item in (int, float, str) else str
    if base is Path:
        return str
    return base if base in (int, float, str) else str


def add_flags(parser: argparse.ArgumentParser, configs: list[type], seen: set[str] | None = None) -> None:
    """Add one flag per field of each config class; a name shared by several classes gets one flag."""
    seen = set() if seen is None else seen
    for cls in configs:
        if cls is None:
            continue
        group = parser.add_argument_group(f"{cls.__doc__.splitlines()[0] if cls.__doc__ else cls.__name__}")
        for f, tp in _fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            base, _ = _unwrap_optional(tp)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            help_text = f.metadata.get("help", "")
            if default is not None and default != "" and "%(default)" not in help_text:
                help_text += f" (default: {default})"
            kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
            if base is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = _converter(f, tp)
                if typing.get_origin(base) in (list, tuple):
                    kwargs["nargs"] = "+"
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
                kwargs["metavar"] = f.name.upper()
            group.add_argument(_flag(f), **kwargs)
            for old, convert in f.metadata.get("aliases", {}).items():
                if old not in seen:
                    seen.add(old)
                    # a renamed flag parses as the field does; a converted one hands its text to `convert`
                    alias = {} if convert else {k: v for k, v in kwargs.items() if k in ("type", "nargs", "action")}
                    group.add_argument("--" + old.replace("_", "-"), dest=old, default=argparse.SUPPRESS,
                                       metavar=None if base is bool else old.upper(),
                                       help=f"old name of {_flag(f)}, still accepted", **alias)


def build(cls: type | None, values: dict[str, Any], where: str = "options", stored: bool = False) -> Any:
    """Instantiate config `cls` from the keys of `values` that it knows (others are ignored). With
    `stored` (a run's stored config, which names every field it had) a missing field takes its `old_default`."""
    if cls is None:
        return None
    kwargs = {}
    for f, tp in _fields(cls):
        if f.name in values:
            kwargs[f.name] = coerce(f, tp, values[f.name], where)
            continue
        for old, convert in f.metadata.get("aliases", {}).items():
            if old in values:
                kwargs[f.name] = coerce(f, tp, convert(values[old]) if convert else values[old], where)
                break
        else:
            if stored and "old_default" in f.metadata:
                kwargs[f.name] = f.metadata["old_default"]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"incomplete {where}: {exc}") from None


def coerce(f: dataclasses.Field, tp: Any, value: Any, where: str) -> Any:
    """Check and convert a JSON/flag value to the field's type, with a message naming the field."""
    base, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: {f.name} must not be empty")
    try:
        if "parse" in f.metadata and isinstance(value, str):
            value = f.metadata["parse"](value)
        if typing.get_origin(base) in (list, tuple):
            item = (typing.get_args(base) or (str,))[0]
            if not isinstance(value, (list, tuple)):
                value = [value]
            return [item(v) if item in (int, float, str) else v for v in value]
        if base is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if base in (int, float) and isinstance(value, (str, bool)):
            raise ValueError  # a number is written as a number (in a config file and from Python alike)
        if base in (int, float, str):
            value = base(value)
        elif base is Path:
            value = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {f.name} should be {getattr(base, '__name__', base)}, got {value!r}") from None
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise ConfigError(f"{where}: {f.name} must be one of {', '.join(map(str, f.metadata['choices']))}, "
                          f"got {value!r}")
    return value


def to_dict(config: Any) -> dict:
    return {} if config is None else json.loads(json.dumps(dataclasses.asdict(config)))


def field_names(cls: type | None) -> set[str]:
    """The option names a config takes, old aliases included."""
    if cls is None:
        return set()
    return {name for f in dataclasses.fields(cls) for name in (f.name, *f.metadata.get("aliases", {}))}


def read_config_file(path: str) -> dict:
    """A JSON or TOML file of option values (keys are field names, dashes or underscores)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path} does not exist; pass a JSON or TOML file of options")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix == ".toml":
            import tomllib
            data = tomllib.loads(text)
        else:
            from searchlab.io import parse_json
            data = parse_json(text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise ConfigError(f"config file {path} is not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object of option names to values")
    return {k.replace("-", "_"): v for k, v in data.items()}
