"""The searchlab command line: parse flags, build objects, print results. No algorithm lives here.

Each command group has its own `add_*_commands(sub)` function below; a command's handler takes the
parsed namespace and returns an exit code. Errors a user can fix (SearchlabError) print one line
`error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import searchlab
from searchlab import registry
from searchlab.errors import ConfigError, SearchlabError

# Modules whose import registers the built-in spaces, strategies, evaluators and predictors.
BUILTIN_PLUGINS = [
    "evolvers.random_search",
    "evolvers.aging_evolution",
]


def _load_plugins() -> None:
    registry.load_plugins(m for m in BUILTIN_PLUGINS)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in descriptions as written."""


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --------------------------------------------------------------------------------------------------
# engine commands: search, resume, status, report, list
# --------------------------------------------------------------------------------------------------

def add_engine_commands(sub) -> None:
    pass


# --------------------------------------------------------------------------------------------------
# nasbench101 commands: enumerate, import, query, stats, draw
# --------------------------------------------------------------------------------------------------

def add_nasbench101_commands(sub) -> None:
    pass


# --------------------------------------------------------------------------------------------------
# predictor commands: predictor train / eval, predict
# --------------------------------------------------------------------------------------------------

def add_predictor_commands(sub) -> None:
    pass


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

COMMAND_GROUPS = [add_engine_commands, add_nasbench101_commands, add_predictor_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="searchlab", formatter_class=_Formatter,
        description="Neural architecture search and evolutionary model compression.\n\n"
                    "Examples:\n"
                    "  searchlab list\n"
                    "  searchlab search nasbench101 --strategy evolution --max-evals 150 --run runs/evo\n"
                    "  searchlab status runs/evo\n")
    parser.add_argument("--version", action="version", version=f"searchlab {searchlab.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        _load_plugins()
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except SearchlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the run can be resumed with `searchlab resume DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
