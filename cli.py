"""The searchlab command line: it assembles the command groups and turns errors into one line.

Each group lives beside the package it drives and has an `add_commands(sub)` function; a command's
handler takes the parsed namespace and returns an exit code. No algorithm lives here. Errors a user can
fix (SearchlabError) print one line `error: ...` on stderr and exit 2.

    searchlab/commands/search.py          search, resume
    searchlab/commands/runs.py            status, report, trials, list
    searchlab/commands/compare.py         compare
    search_spaces/nasbench101/cli.py      nasbench101 enumerate|import|query|stats|draw
    search_spaces/nasbench201/cli.py      nasbench201 query
    predictors/cli.py                     predictor train|eval, predict
    search_spaces/cyclegan/cli.py         cyclegan compare|prune
    search_spaces/binary_widths/cli.py    binary describe
    search_spaces/filter_masks/cli.py     pruned
    searchlab/commands/dashboard.py       dashboard
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (torch reads this when it loads). Spinning threads burn
# the cores that other work on the machine needs: on 2 busy cores two spinning threads of a ReNAS fit
# used 3.5x the CPU seconds and 2.5x the wall time of the same threads sleeping (docs/benchmarks.md,
# "CPU threads on a busy machine"). On an idle machine it costs about an eighth of a ReNAS round's time
# against libgomp's default (spin a while, then sleep); set OMP_WAIT_POLICY yourself to choose.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import searchlab  # noqa: E402 - after the OpenMP setting
from searchlab.commands.common import Formatter, Parser, load_plugins  # noqa: E402,F401 - load_plugins: tests, scripts
from searchlab.errors import SearchlabError  # noqa: E402

# the order of `searchlab --help`
COMMAND_MODULES = ["searchlab.commands.search", "searchlab.commands.runs", "searchlab.commands.compare",
                   "searchlab.search_spaces.nasbench101.cli",
                   "searchlab.search_spaces.nasbench201.cli", "searchlab.predictors.cli",
                   "searchlab.search_spaces.cyclegan.cli", "searchlab.search_spaces.binary_widths.cli",
                   "searchlab.search_spaces.filter_masks.cli", "searchlab.commands.dashboard"]

# commands that run until stopped: no progress lines for them
SERVERS = {"dashboard"}

_load_plugins = load_plugins  # the name scripts and tests know


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="searchlab", formatter_class=Formatter,
        description="Neural architecture search and evolutionary model compression.\n\n"
                    "Examples:\n"
                    "  searchlab list\n"
                    "  searchlab search nasbench101 --strategy evolution --max-evals 150 --run runs/evo\n"
                    "  searchlab status runs/evo\n")
    parser.add_argument("--version", action="version", version=f"searchlab {searchlab.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from searchlab import progress

    argv = sys.argv[1:] if argv is None else argv
    progress.enable("--quiet" not in argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        if args.command in SERVERS:
            return int(args.handler(args) or 0)
        with progress.command("searchlab " + " ".join(a for a in argv[:3] if not a.startswith("-"))):
            return int(args.handler(args) or 0)
    except SearchlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `searchlab trials RUN | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a full disk, read-only storage, a permission: the file and the reason, one line
        if exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM):
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write{where}: {exc.strerror}; free space or make it writable, then try again "
              f"(a stored run stays intact and resumes)", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help and --version end here
        return int(exc.code or 0)
    except KeyboardInterrupt:
        run_dir = getattr(locals().get("args"), "run_dir", None)
        stored = run_dir is not None and (Path(run_dir) / "run.sqlite").is_file()
        print("interrupted" + (f"; the run resumes with `searchlab resume {run_dir}`" if stored else ""),
              file=sys.stderr)
        return 130
    finally:
        progress.enable(False)  # library use after this call starts quiet again


if __name__ == "__main__":
    sys.exit(main())

