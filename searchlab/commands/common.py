"""What every command module shares: the parser classes (one-line errors), JSON output, number and
duration flags, and loading the plug-ins."""

from __future__ import annotations

import argparse
import json

from searchlab import registry
from searchlab.errors import ConfigError


def load_plugins() -> None:
    """Import the installed and named plug-in modules; searchlab's own load when a name of theirs is
    looked up (only the commands that need the registry pay for it)."""
    registry.load_plugins()


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in descriptions as written."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`error: ...`, exit 2) like every other error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--eval` must never silently mean `--evaluator`
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def print_record(obj: dict, as_json: bool, lines: list[str]) -> int:
    """`obj` as JSON (--json), else the human lines; exit code 0."""
    if as_json:
        print_json(obj)
    else:
        print("\n".join(lines))
    return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def duration(text: str) -> float:
    from searchlab.options import parse_duration
    try:
        value = parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
