"""The searchlab command line: parse flags, build objects, print results. No algorithm lives here.

Each command group has its own `add_*_commands(sub)` function below; a command's handler takes the
parsed namespace and returns an exit code. Errors a user can fix (SearchlabError) print one line
`error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

import searchlab
from searchlab import registry
from searchlab.commands import dashboard as dashboard_commands
from searchlab.errors import ConfigError, SearchlabError


def _load_plugins() -> None:
    """Import the plug-in modules; only the commands that need the registry pay for it."""
    registry.load_builtins()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in descriptions as written."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`error: ...`, exit 2) like every other error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--eval` must never silently mean `--evaluator`
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --------------------------------------------------------------------------------------------------
# engine commands: search, resume, status, report, list
# --------------------------------------------------------------------------------------------------

def add_engine_commands(sub) -> None:
    p = sub.add_parser(
        "search", formatter_class=_Formatter, add_help=False,
        help="start a search run (see `searchlab search SPACE --help` for a space's options)",
        description="Start a search: a strategy proposes candidates from SPACE, an evaluator scores them, and\n"
                    "every trial is stored in DIR/run.sqlite. Stop it at any time; `searchlab resume DIR` goes on.\n\n"
                    "Examples:\n"
                    "  searchlab search nasbench101 --strategy evolution --max-evals 150 --seed 0 --run runs/evo\n"
                    "  searchlab search nasbench101 --strategy random --max-time 2m --run runs/rand\n"
                    "  searchlab search nasbench101 --help      # every option of that space\n")
    p.add_argument("space", nargs="?", help="search space name (see `searchlab list`)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.add_argument("-h", "--help", action="store_true", dest="want_help", help="show this help")
    p.set_defaults(handler=_cmd_search)

    p = sub.add_parser(
        "resume", formatter_class=_Formatter, help="continue a stopped or killed run",
        description="Continue a run exactly where it stopped: the strategy state is reloaded, trials that\n"
                    "were in flight are evaluated again with the same seed, nothing is lost or repeated.\n"
                    "Budgets given here replace the stored ones (e.g. raise --max-evals).\n\n"
                    "Example:\n  searchlab resume runs/evo --max-evals 300\n")
    p.add_argument("run_dir", metavar="DIR")
    _add_budget_flags(p)
    p.add_argument("--backend", choices=["local", "processes", "ray"], help="change the backend")
    p.add_argument("--workers", type=int, help="change the number of worker processes")
    p.add_argument("--finalize-again", action="store_true",
                   help="run the final step (rebuild, fine-tune, write) again although it already ran for these trials")
    _add_ray_flags(p)
    _add_output_flags(p)
    p.set_defaults(handler=_cmd_resume)

    p = sub.add_parser("status", formatter_class=_Formatter, help="trials, best so far and budget used of a run",
                       description="Show a run's trial counts, best trial and budget use.\n\n"
                                   "Example:\n  searchlab status runs/evo --json\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("report", formatter_class=_Formatter, help="best-so-far curve and Pareto front of a run",
                       description="Summarise a run: best-so-far curve and, with several objectives, the\n"
                                   "Pareto front; optionally as a PNG plot.\n\n"
                                   "Example:\n  searchlab report runs/evo --plot runs/evo/report.png\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--plot", metavar="PNG", help="write a plot to this PNG file")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("trials", formatter_class=_Formatter,
                       help="every trial of a run: key, objectives, state, cost, error",
                       description="List a run's trials, one line each (--json or --csv for machines).\n\n"
                                   "Examples:\n  searchlab trials runs/evo --sort accuracy --limit 10\n"
                                   "  searchlab trials runs/evo --state failed\n"
                                   "  searchlab trials runs/evo --csv > trials.csv\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--state", choices=("asked", "running", "done", "failed", "cached"),
                   help="only trials in this state (cached: answered from an earlier trial of the same key)")
    p.add_argument("--sort", metavar="OBJECTIVE", help="sort by this objective, best first (as the run optimises it)")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="show at most N trials")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON for machines")
    out.add_argument("--csv", action="store_true", help="print CSV (one column per objective and cost)")
    p.set_defaults(handler=_cmd_trials)

    p = sub.add_parser("list", help="registered spaces, strategies, evaluators and predictors",
                       description="List what can be searched and how.\n\nExample:\n  searchlab list --json\n",
                       formatter_class=_Formatter)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_list)


ENGINE_FLAGS = {"strategy", "evaluator", "seed", "run", "backend", "workers", "device", "config", "max_evals",
                "max_time", "max_epochs", "max_cost", "quiet", "json", "verbose", "finalize", "ray_address",
                "gpus_per_trial", "cpus_per_trial"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _duration(text: str) -> float:
    from searchlab.options import parse_duration
    try:
        value = parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _add_budget_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("budgets (any combination; checked between trials)")
    g.add_argument("--max-evals", type=_positive_int, help="unique candidates to evaluate (the 'queries' of NAS papers)")
    g.add_argument("--max-time", type=_duration, help="wall clock, e.g. 90s, 20m, 2h")
    g.add_argument("--max-epochs", type=_positive_float, help="total training epochs over all trials")
    g.add_argument("--max-cost", type=_positive_float, help="simulated seconds reported by a table evaluator")


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar or status lines on stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--verbose", action="store_true", help="progress bars inside each evaluation too")
    p.add_argument("--no-finalize", dest="finalize", action="store_false",
                   help="skip the space's final step (e.g. fine-tuning the best) after the search")


def _search_parser(space_name: str, strategy_name: str, evaluator_name: str) -> argparse.ArgumentParser:
    from searchlab import options
    space = registry.space(space_name)
    strat = registry.strategy(strategy_name)
    evaluator = registry.evaluator(evaluator_name)
    example_budget = getattr(strat.config() if strat.config else None, "planned_queries", 100)
    p = _Parser(
        prog=f"searchlab search {space_name}", formatter_class=_Formatter,
        description=f"{space.help}\n\nStrategy {strat.name}: {strat.help}\nEvaluator {evaluator.name}: {evaluator.help}\n\n"
                    f"Example:\n  searchlab search {space_name} --strategy {strategy_name} --max-evals {example_budget} "
                    f"--seed 0 --run runs/{space_name}\n")
    g = p.add_argument_group("run")
    g.add_argument("--strategy", default=space.default_strategy,
                   help=f"search strategy (default: {space.default_strategy}); known: {', '.join(registry.strategies())}")
    g.add_argument("--evaluator", default=space.default_evaluator,
                   help=f"how candidates are scored (default: {space.default_evaluator}); known: "
                        f"{', '.join(registry.evaluators())}")
    g.add_argument("--seed", type=int, default=0, help="run seed; every trial's seed derives from it (default: 0)")
    g.add_argument("--run", metavar="DIR", help="run directory (default: runs/SPACE-STRATEGY-TIME)")
    g.add_argument("--backend", default="local", choices=["local", "processes", "ray"],
                   help="where evaluations run (default: local)")
    g.add_argument("--workers", type=_positive_int, default=1, help="trials in flight at once (default: 1)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda:0, or a "
                                                     "comma list, one per worker (default: auto)")
    g.add_argument("--config", metavar="FILE", help="JSON or TOML file of option values; flags override it")
    _add_ray_flags(g)
    _add_budget_flags(p)
    _add_output_flags(p)
    options.add_flags(p, [space.config, strat.config, evaluator.config], seen=set(ENGINE_FLAGS))
    return p


def _cmd_search(args) -> int:
    from searchlab import options, run_config

    _load_plugins()
    if not args.space:
        if args.want_help:
            print("usage: searchlab search SPACE [options]\n\nSpaces:")
            for name, entry in sorted(registry.spaces().items()):
                print(f"  {name:14s} {entry.help}")
            print("\nRun `searchlab search SPACE --help` for the options of a space.")
            return 0
        raise ConfigError("name a search space: `searchlab search SPACE ...`; known spaces: "
                          + ", ".join(sorted(registry.spaces())))
    rest = list(args.rest) + (["--help"] if args.want_help else [])
    space_entry = registry.space(args.space)
    pre = _Parser(add_help=False, prog=f"searchlab search {args.space}")
    pre.add_argument("--strategy")
    pre.add_argument("--evaluator")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(rest)
    file_values = options.read_config_file(known.config) if known.config else {}
    strategy_name = known.strategy or file_values.get("strategy") or space_entry.default_strategy
    evaluator_name = known.evaluator or file_values.get("evaluator") or space_entry.default_evaluator
    strat_entry, eval_entry = registry.strategy(strategy_name), registry.evaluator(evaluator_name)
    registry.check_compatible(args.space, strat_entry, "strategy")
    registry.check_compatible(args.space, eval_entry, "evaluator")
    parser = _search_parser(args.space, strategy_name, evaluator_name)
    flags = vars(parser.parse_args(rest))
    given = {k for k in flags if any(a.lstrip("-").replace("-", "_").split("=")[0] == k for a in rest)}
    unknown = sorted(set(file_values) - ENGINE_FLAGS - run_config.option_names(args.space, strategy_name,
                                                                                 evaluator_name))
    if unknown:
        raise ConfigError(f"config file {known.config}: unknown option(s) {', '.join(unknown)}; "
                          f"see `searchlab search {args.space} --help`")
    values = dict(file_values)
    values.update({k: v for k, v in flags.items() if k in given or k not in file_values})
    where = f"config file {known.config}" if known.config else "options"
    resolved = run_config.resolve(args.space, values, strategy=strategy_name, evaluator=evaluator_name, where=where,
                                  ignore=ENGINE_FLAGS, extra=_ray_search_extra(values))
    run_dir = values.get("run") or resolved.default_run_dir()
    try:
        resolved.create(run_dir)
    except KeyboardInterrupt:
        print("interrupted before the run was stored: nothing to resume", file=sys.stderr)
        return 130
    if not values.get("quiet"):
        print(f"run stored in {run_dir}", file=sys.stderr)
        strategy_options = options.build(strat_entry.config, resolved.strategy_config, where)
        note = getattr(strategy_options, "budget_note", lambda _: None)(resolved.budget["max_evals"])
        if note:
            print(f"note: {note}", file=sys.stderr)
    return _drive(run_dir, None, None, None, quiet=bool(values.get("quiet")), as_json=bool(values.get("json")),
                  verbose=bool(values.get("verbose")), do_finalize=values.get("finalize", True))


def _duration_value(value):
    if value is None or isinstance(value, (int, float)):
        return value
    from searchlab.options import parse_duration
    return parse_duration(value)


def _cmd_resume(args) -> int:
    from searchlab import runner
    budget = runner.Budget(max_evals=args.max_evals, max_time=args.max_time, max_epochs=args.max_epochs,
                           max_cost=args.max_cost)
    return _drive(args.run_dir, budget, args.workers, args.backend, quiet=args.quiet, as_json=args.json,
                  finalize_again=args.finalize_again,
                  verbose=args.verbose, do_finalize=args.finalize, overrides=_ray_resume_overrides(args))


def _drive(run_dir, budget, workers, backend, *, quiet: bool, as_json: bool, verbose: bool, do_finalize: bool,
           overrides: dict | None = None, finalize_again: bool = False) -> int:
    from searchlab import run_config, runner
    from searchlab.run_store import RunStore

    with RunStore.open(run_dir) as _peek:
        config = _peek.config
    objectives = config.get("objectives", {})
    limit = (budget.max_evals if budget and budget.max_evals else None) or config["budget"].get("max_evals")
    bar = None if quiet else _progress_bar(limit, objectives)
    try:
        outcome = runner.run(run_dir, plugins=registry.builtin_plugins(), budget=budget, workers=workers, backend=backend,
                             progress=bar.update if bar else None, verbose=verbose, overrides=overrides)
    finally:  # an error then starts its own line
        if bar:
            bar.close()
    final = None
    if do_finalize and run_config.finalizes(outcome.reason, outcome.best):
        final = runner.finalize(run_dir, plugins=registry.builtin_plugins(), verbose=verbose, again=finalize_again)
        if final and final.pop("reused", False) and not quiet:
            print(f"note: the final step already ran for these trials; its summary is from "
                  f"{Path(run_dir) / runner.FINAL_RECORD} (--finalize-again runs it again)", file=sys.stderr)
    summary = {"run": str(run_dir), "stopped_by": outcome.reason, "trials": outcome.told,
               "evaluated": outcome.evaluated, "best": outcome.best, "final": final}
    if as_json:
        _print_json(summary)
    else:
        print(_describe_outcome(summary, objectives))
    if outcome.reason == "interrupted":
        return 130
    if outcome.best is None and outcome.evaluated:
        from searchlab import report
        from searchlab.run_view import RunView
        with RunView.open(run_dir) as run:
            reasons = report.status(run)["failures"]
        if reasons:
            print(f"error: every trial failed; most common reason ({reasons[0]['count']}x): {reasons[0]['error']}",
                  file=sys.stderr)
            return 1
    return 0


_REASONS = {"finished": "the strategy finished", "max_evals": "--max-evals reached", "max_time": "--max-time reached",
            "max_epochs": "--max-epochs reached", "max_cost": "--max-cost reached",
            "exhausted": "the strategy has no new candidates", "interrupted": "interrupted (resumable)"}


def _describe_outcome(summary: dict, objectives: dict) -> str:
    lines = [f"run {summary['run']}: {summary['trials']} trials, {summary['evaluated']} evaluated; stopped: "
             f"{_REASONS.get(summary['stopped_by'], summary['stopped_by'])}"]
    best = summary["best"]
    if best:
        objs = ", ".join(f"{k}={_fmt(v)}" for k, v in best["result"]["objectives"].items())
        lines.append(f"best: trial {best['id']}  {objs}")
        lines.append(f"      key {best['key']}")
        genome = json.dumps(best["genome"])
        lines.append(f"      genome {genome if len(genome) <= 300 else genome[:240] + ' ... (whole: searchlab trials --json)'}")
    else:
        lines.append("best: no successful trial yet")
    if summary.get("final"):
        for k, v in summary["final"].items():
            lines.append(f"{k}: {_fmt(v) if not isinstance(v, (dict, list)) else json.dumps(v, default=str)}")
    lines.append(f"resume with: searchlab resume {summary['run']} [--max-evals N]   report: searchlab report {summary['run']}")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class _progress_bar:
    """tqdm bar on stderr showing evaluated candidates and the best primary objective so far."""

    def __init__(self, total, objectives):
        from tqdm import tqdm
        self.name = next(iter(objectives), None)
        # disable=None: a bar on a terminal only, none in logs and pipes
        self.bar = tqdm(total=total, unit="eval", file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)
        self.seen = 0

    def update(self, info: dict) -> None:
        self.bar.update(info["evaluated"] - self.seen)
        self.seen = info["evaluated"]
        best = info.get("best")
        if best is not None and self.name and best.result and self.name in best.result.objectives:
            self.bar.set_postfix_str(f"best {self.name}={best.result.objectives[self.name]:.5g}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _cmd_status(args) -> int:
    from searchlab import report
    from searchlab.run_view import RunView
    with RunView.open(args.run_dir) as run:
        info = report.status(run)
    if args.json:
        _print_json(info)
        return 0
    counts = info["trials"]
    print(f"run {info['run']}: space {info['space']}, strategy {info['strategy']}, evaluator {info['evaluator']}, "
          f"seed {info['seed']}")
    print("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for name, b in info["budget"].items():
        if b["limit"] is not None:
            print(f"budget {name}: {_fmt(b['used'])} of {_fmt(b['limit'])}")
    if info["size_budget"]:
        print(f"size budget: {info['size_budget']['summary']}")
    if info["best"]:
        best = info["best"]
        print(f"best: trial {best['id']}  " + ", ".join(f"{k}={_fmt(v)}" for k, v in best["result"]["objectives"].items()))
    else:
        print("best: no successful trial yet")
    for f in info["failures"]:
        print(f"failed {f['count']}x: {f['error']}")
    v = info["reproducibility"]["versions"]
    commit = f", commit {v['git_commit'][:10]}{' with uncommitted changes' if v.get('git_dirty') else ''}" \
        if v.get("git_commit") else ""
    print(f"made with searchlab {v.get('searchlab', '?')}, torch {v.get('torch', '?')}, python {v.get('python', '?')}"
          f"{commit} (status --json holds the whole configuration)")
    return 0


def _cmd_trials(args) -> int:
    from searchlab import api

    run = api.open_run(args.run_dir)
    objectives = run.config.get("objectives", {})
    rows = run.trials()
    if args.state == "cached":
        rows = [r for r in rows if r["cached_from"] is not None]
    elif args.state:
        rows = [r for r in rows if r["state"] == args.state]
    if args.sort:
        if args.sort not in objectives:
            raise ConfigError(f"--sort {args.sort}: the run's objectives are {', '.join(objectives)}")
        sign = -1.0 if objectives[args.sort] == "max" else 1.0
        rows.sort(key=lambda r: (args.sort not in r["objectives"], sign * r["objectives"].get(args.sort, 0.0)))
    rows = rows[:args.limit] if args.limit else rows
    if args.json:
        _print_json(rows)
    elif args.csv:
        _print_csv(rows, list(objectives))
    else:
        _print_trials(rows, list(objectives))
    return 0


def _print_csv(rows: list[dict], objectives: list[str]) -> None:
    import csv

    costs = sorted({k for r in rows for k in r["cost"]})
    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "state", "key", *objectives, *(f"cost_{c}" for c in costs), "cached_from", "error",
                     "genome"])
    for r in rows:
        writer.writerow([r["id"], r["state"], r["key"], *(r["objectives"].get(o, "") for o in objectives),
                         *(r["cost"].get(c, "") for c in costs), r["cached_from"] or "", r["error"] or "",
                         json.dumps(r["genome"])])


def _print_trials(rows: list[dict], objectives: list[str]) -> None:
    print(f"{'id':>5} {'state':7} " + " ".join(f"{o[:12]:>12}" for o in objectives) + f" {'seconds':>8}  key / error")
    for r in rows:
        values = " ".join(f"{_fmt(r['objectives'][o]) if o in r['objectives'] else '-':>12}" for o in objectives)
        seconds = r["cost"].get("seconds")
        tail = r["error"] if r["state"] == "failed" else _short(r["key"]) + (
            f"  (= trial {r['cached_from']})" if r["cached_from"] else "")
        print(f"{r['id']:>5} {r['state']:7} {values} {f'{seconds:.3g}' if seconds is not None else '-':>8}  {tail}")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _cmd_report(args) -> int:
    from searchlab import report
    from searchlab.run_view import RunView
    with RunView.open(args.run_dir) as run:
        info = report.report(run)
        if args.plot:
            report.plot(run, args.plot)
    if args.json:
        _print_json(info)
        return 0
    print(f"run {info['run']}: {info['space']} / {info['strategy']} / {info['evaluator']}")
    if info["size_budget"]:
        print(f"size budget: {info['size_budget']['summary']}")
    print("best so far (evaluated -> value):")
    for point in info["best_so_far"]:
        print(f"  {point['evaluated']:6d}  {_fmt(point['value'])}")
    if info.get("pareto_front"):
        print(f"Pareto front ({len(info['pareto_front'])} trials):")
        for point in info["pareto_front"]:
            print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in point.items()))
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _cmd_list(args) -> int:
    _load_plugins()
    info = {
        "spaces": {n: {"help": e.help, "default_strategy": e.default_strategy, "default_evaluator": e.default_evaluator}
                   for n, e in sorted(registry.spaces().items())},
        "strategies": {n: {"help": e.help, "spaces": e.spaces or "any"} for n, e in sorted(registry.strategies().items())},
        "evaluators": {n: {"help": e.help, "spaces": e.spaces or "any"} for n, e in sorted(registry.evaluators().items())},
        "predictors": {n: {"help": e.help} for n, e in sorted(registry.predictors().items())},
    }
    if args.json:
        _print_json(info)
        return 0
    for group, entries in info.items():
        print(f"{group}:")
        for name, e in entries.items():
            extra = f"  [spaces: {', '.join(e['spaces'])}]" if isinstance(e.get("spaces"), tuple) else ""
            summary = e["help"].split("; e.g.")[0].splitlines()[0] if e["help"] else ""
            print(f"  {name:16s} {summary}{extra}")
    return 0


# --------------------------------------------------------------------------------------------------
# nasbench101 commands: enumerate, import, query, stats, draw
# --------------------------------------------------------------------------------------------------

def add_nasbench101_commands(sub) -> None:
    p = sub.add_parser(
        "nasbench101", formatter_class=_Formatter, help="NAS-Bench-101: enumerate, import, query, stats, draw",
        description="NAS-Bench-101 without TensorFlow: the bundled table (all 423,624 cells, one run at 108\n"
                    "epochs) or one imported from the official release files.\n\n"
                    "Examples:\n"
                    "  searchlab nasbench101 query --hash 00005c142e6f48ac74fdcf73e3439874\n"
                    "  searchlab nasbench101 query --spec @cell.json --json\n"
                    "  searchlab nasbench101 stats\n"
                    "  searchlab nasbench101 draw --hash 00005c142e6f48ac74fdcf73e3439874 --out cell.png\n"
                    "  searchlab nasbench101 enumerate --out cells.jsonl\n"
                    "  searchlab nasbench101 import nasbench_only108.tfrecord --db nb101.sqlite\n")
    nsub = p.add_subparsers(dest="nasbench101_command", metavar="COMMAND")
    p.set_defaults(handler=lambda args: p.print_help() or 2)
    spec_help = 'the cell as JSON {"matrix": [[...]], "ops": [...]} or @file.json'
    db_help = "table database from `nasbench101 import` (default: the bundled table)"

    q = nsub.add_parser("query", formatter_class=_Formatter, help="look a cell up by hash or spec",
                        description="Print a cell's runs, mean over repeats, FLOPs and rank in the table.\n\n"
                                    "Examples:\n"
                                    "  searchlab nasbench101 query --hash 00005c142e6f48ac74fdcf73e3439874\n"
                                    "  searchlab nasbench101 query --spec '{\"matrix\": [[0,1,1],[0,0,1],[0,0,0]], "
                                    "\"ops\": [\"input\", \"conv3x3-bn-relu\", \"output\"]}'\n")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--hash", help="the cell's module hash (32 hex characters)")
    g.add_argument("--spec", help=spec_help)
    q.add_argument("--db", help=db_help)
    q.add_argument("--epochs", type=int, default=108, help="training epochs of the runs to show (default: 108)")
    q.add_argument("--json", action="store_true", help="print JSON for machines")
    q.set_defaults(handler=_nb101_query)

    s = nsub.add_parser("stats", formatter_class=_Formatter, help="counts, accuracy distribution, best cells",
                        description="Summarise a table: cells by vertex count, test-accuracy distribution, best cells."
                                    "\n\nExample:\n  searchlab nasbench101 stats --top 10\n")
    s.add_argument("--db", help=db_help)
    s.add_argument("--top", type=int, default=5, help="how many best cells to list (default: 5)")
    s.add_argument("--json", action="store_true", help="print JSON for machines")
    s.set_defaults(handler=_nb101_stats)

    d = nsub.add_parser("draw", formatter_class=_Formatter, help="draw a cell as a labelled graph (PNG)",
                        description="Draw a cell (vertices by depth, labelled with their operations).\n\n"
                                    "Example:\n  searchlab nasbench101 draw --hash 00005c142e6f48ac74fdcf73e3439874 "
                                    "--out cell.png\n")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--hash", help="the cell's module hash (32 hex characters)")
    g.add_argument("--spec", help=spec_help)
    d.add_argument("--db", help=db_help)
    d.add_argument("--out", required=True, help="PNG file to write")
    d.set_defaults(handler=_nb101_draw)

    e = nsub.add_parser("enumerate", formatter_class=_Formatter, help="generate every unique cell with its hash",
                        description="Walk all labelled graphs as the published enumeration does (1,293,208),\n"
                                    "keep one per hash (423,624), compare them with the bundled table.\n\n"
                                    "Examples:\n  searchlab nasbench101 enumerate\n"
                                    "  searchlab nasbench101 enumerate --out cells.jsonl   # or cells.npz\n")
    e.add_argument("--out", help="write the cells, sorted by hash: .jsonl (one JSON per line) or .npz (arrays)")
    e.add_argument("--workers", type=int, default=2, help="processes hashing the cells (default: 2)")
    e.add_argument("--max-vertices", type=int, default=7, choices=range(2, 8), metavar="{2..7}",
                   help="stop at this many vertices (default: 7, the whole space)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--json", action="store_true", help="print JSON for machines")
    e.set_defaults(handler=_nb101_enumerate)

    i = nsub.add_parser("import", formatter_class=_Formatter, help="import an official .tfrecord release file",
                        description="Stream an official release file into a table database (no TensorFlow).\n\n"
                                    "Example:\n  searchlab nasbench101 import nasbench_only108.tfrecord --db nb101.sqlite\n"
                                    "  searchlab nasbench101 query --db nb101.sqlite --hash 00005c142e6f48ac74fdcf73e3439874\n")
    i.add_argument("file", metavar="FILE", help="nasbench_only108.tfrecord or nasbench_full.tfrecord")
    i.add_argument("--db", required=True, help="the SQLite database to write (replaced atomically)")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    i.set_defaults(handler=_nb101_import)


def _nb101_print(obj: dict, as_json: bool, lines: list[str]) -> int:
    if as_json:
        _print_json(obj)
    else:
        print("\n".join(lines))
    return 0


def _nb101_query(args) -> int:
    from searchlab.search_spaces.nasbench101 import commands

    out = commands.query(args.db, args.hash, args.spec, args.epochs)
    fmt = lambda v, f="{:.4f}": "n/a" if v is None else f.format(v)  # noqa: E731
    lines = [f"hash        {out['hash']}", f"ops         {', '.join(out['ops'])}",
             "matrix      " + "\n            ".join(" ".join(map(str, r)) for r in out["matrix"]),
             f"params      {fmt(out['trainable_parameters'], '{:,}')}", f"flops       {fmt(out['flops'], '{:,.0f}')}",
             f"test acc    {fmt(out['mean']['test_accuracy'])} (mean of {out['repeats']} run(s) at "
             f"{out['epochs']} epochs; valid {fmt(out['mean']['validation_accuracy'])}, "
             f"train time {fmt(out['mean']['training_time'], '{:.0f} s')})",
             f"rank        {out['rank_by_test_accuracy']:,} of {out['cells']:,} by test accuracy"]
    return _nb101_print(out, args.json, lines)


def _nb101_stats(args) -> int:
    from searchlab.search_spaces.nasbench101 import commands

    if args.top < 0:
        raise ConfigError("--top must be 0 or more")
    out = commands.stats(args.db, args.top)
    q = out["test_accuracy_quantiles"]
    lines = [f"{out['cells']:,} cells ({out['source']})", "vertices  cells     mean acc  best acc"]
    lines += [f"{n:>8}  {v['cells']:>8,}  {v['mean_test_accuracy']:.4f}    {v['best_test_accuracy']:.4f}"
              for n, v in out["by_vertices"].items()]
    lines += ["test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in q.items()), "histogram:"]
    lines += [f"  {b['from']:.2f}-{b['to']:.2f}  {b['cells']:>8,}" for b in out["test_accuracy_histogram"]]
    lines += ["best cells:"] + [f"  {b['rank']:>3}. {b['hash']}  {b['test_accuracy']:.4f}  {', '.join(b['ops'][1:-1])}"
                                for b in out["best"]]
    return _nb101_print(out, args.json, lines)


def _nb101_draw(args) -> int:
    from searchlab.search_spaces.nasbench101 import commands

    out = commands.draw(args.db, args.hash, args.spec, args.out)
    print(f"wrote {out['out']} ({out['hash']}, test accuracy {out['test_accuracy']:.4f})")
    return 0


def _nb101_enumerate(args) -> int:
    from searchlab.search_spaces.nasbench101 import commands

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    out = commands.enumerate_to(args.out, progress=not args.quiet, workers=args.workers,
                                max_vertices=args.max_vertices)
    lines = [f"{out['labelled_graphs']:,} labelled graphs, {out['cells']:,} unique cells in {out['seconds']} s",
             f"cumulative unique cells up to 2..{args.max_vertices} vertices: "
             + ", ".join(f"{v:,}" for v in out["cumulative_unique_by_max_vertices"].values())]
    if "same_cells_as_bundled_table" in out:
        lines.append(f"same hashes and graphs as the bundled table: {'yes' if out['same_cells_as_bundled_table'] else 'NO'}")
    if out.get("out"):
        lines.append(f"wrote {out['out']}")
    return _nb101_print(out, args.json, lines)


def _nb101_import(args) -> int:
    from searchlab.search_spaces.nasbench101.tfrecord import import_tfrecord

    out = import_tfrecord(args.file, args.db, progress=not args.quiet)
    print(f"imported {out['records']:,} records ({out['cells']:,} cells) into {out['db']}")
    return 0


# --------------------------------------------------------------------------------------------------
# predictor commands: predictor train / eval, predict
# --------------------------------------------------------------------------------------------------

_EXACT_HELP = ("float32 throughout (default: bfloat16 inference on a CPU that computes it natively: "
               "about 2.3x faster, the ranking practically unchanged)")


def add_predictor_commands(sub) -> None:
    from searchlab.predictors.configs import ReNASConfig, SemiGCNConfig
    from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
    from searchlab.options import add_flags

    p = sub.add_parser(
        "predictor", formatter_class=_Formatter, help="train and evaluate NAS-Bench-101 performance predictors",
        description="Performance predictors for NAS-Bench-101 cells: the ReNAS feature-tensor ranker and the\n"
                    "semi-supervised GCN assessor, trained on cells sampled from the bundled table.\n\n"
                    "Examples:\n"
                    "  searchlab predictor train --kind renas --labels 424 --seed 0 --out preds/renas\n"
                    "  searchlab predictor train --kind semi-gcn --labels 172 --unlabeled 10000 --out preds/gcn\n"
                    "  searchlab predictor eval preds/renas --test 10000\n"
                    "  searchlab predict preds/renas --all --top 10\n")
    psub = p.add_subparsers(dest="predictor_command", metavar="COMMAND")
    p.set_defaults(handler=lambda args: p.print_help() or 2)

    t = psub.add_parser("train", formatter_class=_Formatter, help="fit a predictor on cells sampled from the table",
                        description="Sample --labels cells of the table (seeded), fit a predictor on their --target\n"
                                    "and save it to --out (predictor.json + weights.safetensors).\n\n"
                                    "Examples:\n"
                                    "  searchlab predictor train --kind renas --labels 424 --seed 0 --out preds/renas\n"
                                    "  searchlab predictor train --kind semi-gcn --labels 100 --unlabeled 10000 "
                                    "--out preds/gcn\n")
    t.add_argument("--kind", required=True, choices=["renas", "semi-gcn", "graph-transformer"],
                   help="which predictor")
    t.add_argument("--labels", type=int, default=424, help="labelled cells sampled from the table (default: 424)")
    t.add_argument("--seed", type=int, default=0, help="seed of the sample and of the training (default: 0)")
    t.add_argument("--target", default="test_accuracy",
                   help="table column to learn: test_accuracy, flops or params (default: test_accuracy)")
    t.add_argument("--out", required=True, help="directory to write the predictor to")
    t.add_argument("--space", default="nasbench101", choices=["nasbench101", "nasbench201"],
                   help="whose table to sample and learn (default: nasbench101)")
    t.add_argument("--json", action="store_true", help="print JSON for machines")
    add_flags(t, [ReNASConfig, SemiGCNConfig, GraphTransformerConfig])
    t.set_defaults(handler=_predictor_train)

    e = psub.add_parser("eval", formatter_class=_Formatter, help="rank correlation on held-out cells + scatter plot",
                        description="Kendall tau, Spearman rho and precision@k of a predictor on cells it was not\n"
                                    "trained on (all of them, or a seeded sample), and a predicted-vs-true PNG.\n\n"
                                    "Examples:\n"
                                    "  searchlab predictor eval preds/renas\n"
                                    "  searchlab predictor eval preds/renas --test 100 --plot renas100.png\n")
    e.add_argument("dir", help="predictor directory (from `predictor train`)")
    e.add_argument("--test", default="all", help="'all' held-out cells or a number of them (default: all)")
    e.add_argument("--seed", type=int, default=0, help="seed of the held-out sample (default: 0)")
    e.add_argument("--plot", help="scatter plot path (default: DIR/scatter.png)")
    e.add_argument("--json", action="store_true", help="print JSON for machines")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--exact", action="store_true", help=_EXACT_HELP)
    e.set_defaults(handler=_predictor_eval)

    q = sub.add_parser("predict", formatter_class=_Formatter, help="predicted accuracy of NAS-Bench-101 cells",
                       description="Predicted value (the predictor's target, e.g. test accuracy) of cells, in input "
                                   "order.\n--file holds a JSON list of cells: spec objects or hash strings.\n\n"
                                   "Examples:\n"
                                   "  searchlab predict preds/renas --hash 00005c142e6f48ac74fdcf73e3439874\n"
                                   "  searchlab predict preds/renas --spec '{\"matrix\": [[0,1,1],[0,0,1],[0,0,0]], "
                                   "\"ops\": [\"input\", \"conv3x3-bn-relu\", \"output\"]}'\n"
                                   "  searchlab predict preds/renas --file cells.json --json\n"
                                   "  searchlab predict preds/renas --all --top 10\n")
    q.add_argument("dir", help="predictor directory (from `predictor train`)")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--hash", action="append", help="a cell's module hash (repeatable)")
    g.add_argument("--spec", action="append", help='a cell as JSON {"matrix": [[...]], "ops": [...]} or @file.json')
    g.add_argument("--file", help="JSON list of cells (spec objects or hash strings)")
    g.add_argument("--arch", action="append", help="a NAS-Bench-201 cell: arch string or index (repeatable)")
    g.add_argument("--all", action="store_true", help="rank every cell of the table (with --top)")
    q.add_argument("--top", type=int, default=10, help="with --all: how many best-predicted cells (default: 10)")
    q.add_argument("--json", action="store_true", help="print a JSON list of {hash, predicted}")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.add_argument("--exact", action="store_true", help=_EXACT_HELP)
    q.set_defaults(handler=_predict)


def _predictor_train(args) -> int:
    from searchlab.predictors import commands

    options = {k: v for k, v in vars(args).items()
               if k not in {"kind", "labels", "seed", "target", "out", "json", "handler", "command",
                            "predictor_command", "space"}}
    out = commands.train(args.kind, args.labels, args.seed, args.target, args.out, options, space=args.space)
    if args.json:
        _print_json(out)
    else:
        extra = f" + {out['unlabeled']:,} unlabelled" if out["unlabeled"] else ""
        print(f"trained {out['kind']} on {out['labels']:,} labelled{extra} cells ({out['target']}) in "
              f"{out['train_seconds']:.1f} s; wrote {out['out']}")
    return 0


def _predictor_eval(args) -> int:
    from searchlab.predictors import commands

    out = commands.evaluate(args.dir, args.test, args.seed, args.plot, progress=not args.quiet and not args.json,
                            exact=args.exact)
    if args.json:
        _print_json(out)
        return 0
    print(f"{out['kind']} trained on {out['labels']:,} cells, tested on {out['test_cells']:,} held-out cells "
          f"({out['target']}):")
    print(f"  Kendall tau     {out['kendall_tau']:.4f}\n  Spearman rho    {out['spearman_rho']:.4f}\n"
          f"  precision@10    {out['precision_at_10']:.2f}\n  precision@100   {out['precision_at_100']:.2f}")
    print(f"  predicted best  {out.get('predicted_best_hash') or out['predicted_best_arch']} (true {out['predicted_best_true']:.4f}, rank "
          f"{out['predicted_best_rank_in_test']:,} of {out['test_cells']:,})")
    print(f"wrote {out['plot']}")
    return 0


def _predict(args) -> int:
    from searchlab.predictors import commands
    from searchlab.search_spaces.nasbench101.commands import parse_spec_arg

    progress = not args.quiet and not args.json
    if args.all:
        rows = commands.predict(args.dir, top=args.top, progress=progress, exact=args.exact)
    else:
        specs = [parse_spec_arg(s) for s in args.spec] if args.spec else None
        rows = commands.predict(args.dir, hashes=args.hash, specs=specs, file=args.file, progress=progress,
                                exact=args.exact, archs=args.arch)
    if args.json:
        _print_json(rows)
        return 0
    name = "hash" if rows and "hash" in rows[0] else "arch"
    width = max([32] + [len(r[name]) for r in rows])
    print(("rank  " if args.all else "") + f"{name:<{width}}  predicted")
    for r in rows:
        print((f"{r['rank']:>4}  " if args.all else "") + f"{r[name]:<{width}}  {r['predicted']:.4f}")
    try:
        meta = json.loads((Path(args.dir) / "predictor.json").read_text()).get("meta", {})
    except (OSError, ValueError):
        meta = {}
    target = meta.get("target", "the target")
    print(f"(predicted: a ranking score on the scale of {target}, fitted to {meta.get('labels', 'its')} labelled cells; "
          f"it orders cells and can lie outside the real values, so it is not a measured {target})")
    return 0


# --------------------------------------------------------------------------------------------------
# cyclegan commands: prune a generator with a mask
# --------------------------------------------------------------------------------------------------

def add_cyclegan_commands(sub) -> None:
    p = sub.add_parser(
        "cyclegan", formatter_class=_Formatter, help="CycleGAN generator tools (apply a searched mask)",
        description="Cut a CycleGAN generator down to a channel mask (a run's cyclegan/masks.json or a 0/1 file).\n\n"
                    "Example:\n"
                    "  searchlab cyclegan prune --checkpoint ckpt/latest_net_G_A.pth --mask runs/cg/cyclegan/masks.json \\\n"
                    "      --side A --out G_A_small.pth\n")
    csub = p.add_subparsers(dest="cyclegan_command", metavar="COMMAND")
    pr = csub.add_parser("prune", help="write the physically pruned generator of a mask", formatter_class=_Formatter,
                         description=p.description)
    pr.add_argument("--checkpoint", required=True, help="the full generator state_dict (.pth)")
    pr.add_argument("--mask", required=True, help="mask file: 0/1 text, JSON list, or JSON object keyed by side")
    pr.add_argument("--side", default="A", choices=("A", "B"), help="which mask of a JSON object to use (default: A)")
    pr.add_argument("--out", required=True, help="where to write the pruned state_dict (.pth)")
    pr.add_argument("--json", action="store_true", help="print JSON for machines")
    pr.set_defaults(handler=_cyclegan_prune)
    cmp = csub.add_parser("compare", help="PSNR of a pruned generator's outputs against the full generator's",
                          formatter_class=_Formatter,
                          description="Run both generators on a CycleGAN folder's images of one domain and report "
                                      "how close the pruned outputs are.\n\nExample:\n"
                                      "  searchlab cyclegan compare --full G_A.pth --pruned runs/cg/cyclegan/pruned_G_A.pth "
                                      "--data horse2zebra/ --side A\n")
    cmp.add_argument("--full", required=True, help="the full generator state_dict (.pth)")
    cmp.add_argument("--pruned", required=True, help="the pruned generator state_dict (.pth)")
    cmp.add_argument("--data", required=True, help="CycleGAN folder (trainA/, trainB/, testA/, testB/)")
    cmp.add_argument("--side", default="A", choices=("A", "B"), help="input domain of the generator (default: A)")
    cmp.add_argument("--crop", type=int, default=0, help="centre-crop size (default 0: full images)")
    cmp.add_argument("--json", action="store_true", help="print JSON for machines")
    cmp.set_defaults(handler=_cyclegan_compare)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _cyclegan_compare(args) -> int:
    from searchlab.search_spaces import cyclegan as cg

    full, small = cg.load_generator(args.full), cg.load_generator(args.pruned)
    images = cg.read_unpaired(args.data, args.crop)
    out = {split: cg.compare_outputs(full, small, images[f"{split}{args.side}"])
           for split in ("train", "test") if len(images[f"{split}{args.side}"])}
    if args.json:
        _print_json(out)
        return 0
    for split, r in out.items():
        print(f"{split}{args.side}: PSNR {r['psnr']:.2f} dB of the pruned outputs against the full generator's, "
              f"over {r['images']} image(s) (MSE {r['mse']:.3g}; per image "
              + ", ".join(f"{p:.2f}" for p in r["psnr_per_image"]) + ")")
    return 0


def _cyclegan_prune(args) -> int:
    import torch
    from searchlab.search_spaces import cyclegan as cg

    gen = cg.load_generator(args.checkpoint)
    bits = cg.read_mask_file(args.mask, gen, args.side)
    small = cg.prune(gen, bits)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(small.state_dict(), tmp)
    tmp.replace(out)
    full, pruned = cg.describe_generator(gen), cg.describe_generator(small)
    summary = {"out": str(out), "full": full, "pruned": pruned, "param_ratio": full["params"] / pruned["params"]}
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote {out}: {full['params']:,} -> {pruned['params']:,} parameters "
              f"({summary['param_ratio']:.2f}x fewer), {full['size_mb']} -> {pruned['size_mb']} MB")
    return 0


# --------------------------------------------------------------------------------------------------
# binary commands: describe binary networks (accounting of presets and ratio lists)
# --------------------------------------------------------------------------------------------------

def add_binary_commands(sub) -> None:
    p = sub.add_parser(
        "binary", formatter_class=_Formatter, help="binary network accounting (params, bits, FLOPs, BOPs)",
        description="Describe binary VGG-Small / ResNet-18 networks: widths, params, size in bits, FLOPs of the\n"
                    "full-precision layers, binary operations (BOPs) and FLOPs + BOPs/64.\n\n"
                    "Examples:\n"
                    "  searchlab binary describe --net vgg-small                 # every preset\n"
                    "  searchlab binary describe --net vgg-small --ratios 0.5 2 1 1 1 0.5\n"
                    "  searchlab binary describe --net resnet18 --preset full-precision --json\n")
    bsub = p.add_subparsers(dest="binary_command", metavar="COMMAND")
    d = bsub.add_parser("describe", help="accounting of presets or of one ratio list", formatter_class=_Formatter,
                        description=p.description)
    d.add_argument("--net", default="vgg-small", help="vgg-small or resnet18 (default: vgg-small)")
    d.add_argument("--preset", help="binary-1x, full-precision, vgg-auto-a or vgg-auto-b (default: all that fit)")
    d.add_argument("--ratios", nargs="+", type=float, help="one expansion ratio per searchable layer")
    d.add_argument("--allowed-ratios", nargs="+", type=float, default=[0.5, 1, 2, 3, 4],
                   help="the allowed ratio set (default: 0.5 1 2 3 4)")
    d.add_argument("--full-precision", action="store_true", help="describe --ratios as a full-precision network")
    d.add_argument("--width-scale", type=float, default=1.0, help="multiplies every base width (default: 1)")
    d.add_argument("--json", action="store_true", help="print JSON for machines")
    d.set_defaults(handler=_binary_describe)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _binary_describe(args) -> int:
    from searchlab.search_spaces import binary_widths as bw

    space = bw.BinaryWidthSpace(bw.BinarySpaceConfig(net=args.net, ratios=args.allowed_ratios,
                                                     width_scale=args.width_scale))
    if args.ratios is not None and args.preset:
        raise ConfigError("give --ratios or --preset, not both")
    if args.ratios is not None:
        space.genome_of(args.ratios)  # wrong length or a ratio outside the allowed set: one-line error
        named = [("custom", [float(r) for r in args.ratios], not args.full_precision)]
    else:
        names = [args.preset] if args.preset else [n for n, e in bw.PRESETS.items() if args.net in e["nets"]]
        named = [(n, *bw.preset_ratios(args.net, n)) for n in names]
    base = space.base_cost()
    rows = []
    for name, ratios, binary in named:
        acc = bw.account_ratios(args.net, ratios, binary=binary, width_scale=args.width_scale)
        rows.append({"name": name, "net": args.net, "binary": binary, "ratios": ratios,
                     "widths": bw.widths_for(args.net, ratios, args.width_scale), **acc,
                     "cost_ratio": acc["flops_bops64"] / base})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'name':15s} {'params':>10s} {'size MiB':>9s} {'FLOPs':>10s} {'BOPs':>10s} {'FLOPs+BOPs/64':>14s} {'vs 1x':>6s}  ratios")
    for r in rows:
        print(f"{r['name']:15s} {r['params'] / 1e6:9.2f}M {r['size_bits'] / 8 / 2**20:9.3f} {r['flops'] / 1e6:9.1f}M "
              f"{r['bops'] / 1e6:9.1f}M {r['flops_bops64'] / 1e6:13.2f}M {r['cost_ratio']:6.2f}  "
              f"{' '.join(f'{x:g}' for x in r['ratios'])}{'' if r['binary'] else ' (full precision)'}")
    return 0


# --------------------------------------------------------------------------------------------------
# ray flags of search and resume (distributed evaluation, see docs/distributed.md)
# --------------------------------------------------------------------------------------------------

RAY_FLAGS = ("ray_address", "gpus_per_trial", "cpus_per_trial")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _add_ray_flags(g) -> None:
    g.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="with --backend ray: join this Ray cluster (auto = the one `ray start` made here); "
                        "default: start a local Ray instance for the run")
    g.add_argument("--gpus-per-trial", type=_non_negative_float, metavar="G",
                   help="with --backend ray: GPUs Ray reserves for each trial, which uses exactly those (default: 0)")
    g.add_argument("--cpus-per-trial", type=_positive_float, metavar="C",
                   help="with --backend ray: CPUs Ray reserves for each trial (default: 1)")


def _ray_search_extra(values: dict) -> dict | None:
    given = [k for k in RAY_FLAGS if values.get(k) is not None]
    if values.get("backend", "local") != "ray":
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} only applies to --backend ray; add --backend ray")
        return None
    from searchlab.ray_backend import ray_config
    return ray_config(values.get("ray_address"), values.get("gpus_per_trial"), values.get("cpus_per_trial"),
                      values.get("device", "auto"))


def _ray_resume_overrides(args) -> dict | None:
    given = {k: getattr(args, k) for k in RAY_FLAGS if getattr(args, k) is not None}
    if args.backend != "ray" and not given:
        return None
    from searchlab.run_store import RunStore
    with RunStore.open(args.run_dir) as peek:
        config = peek.config
    if (args.backend or config.get("backend")) != "ray":
        raise ConfigError(f"--{next(iter(given)).replace('_', '-')} only applies to --backend ray; add --backend ray")
    merged = {k: given.get(k, config.get(k)) for k in RAY_FLAGS}
    from searchlab.ray_backend import ray_config
    return ray_config(merged["ray_address"], merged["gpus_per_trial"], merged["cpus_per_trial"],
                      config.get("device", "auto"))


# --------------------------------------------------------------------------------------------------
# pruning commands: rebuild and inspect a pruned network written by a `prune` run
# --------------------------------------------------------------------------------------------------

def add_pruning_commands(sub) -> None:
    p = sub.add_parser(
        "pruned", formatter_class=_Formatter, help="rebuild a pruned network from a prune run and describe it",
        description="Rebuild the pruned network a `searchlab search prune` run wrote (DIR/pruned: architecture.json +\n"
                    "model.safetensors), print its params, FLOPs and filters per layer, and score it on a data set.\n\n"
                    "Example:\n"
                    "  searchlab pruned runs/lenet/pruned --data mnist:data/mnist\n"
                    "  searchlab pruned runs/mine/pruned --model mypkg.nets:build   # pruned from a user model\n")
    p.add_argument("pruned_dir", metavar="DIR", help="the pruned/ folder of a prune run (or the run folder)")
    p.add_argument("--model", help="package.module:factory the folder was pruned from, when it is a user model "
                                   "(searchlab never imports code that a folder names)")
    p.add_argument("--data", help="KIND:PATH; score accuracy on its test split (all images when it has none)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_pruned)


def _cmd_pruned(args) -> int:
    from searchlab.evolvers.filter_pruning import inspect_pruned

    out = inspect_pruned(args.pruned_dir, data=args.data, device=args.device, model=args.model)
    if args.json:
        _print_json(out)
        return 0
    print(f"{out['model']} (pruned): {out['params']:,} parameters, {out['flops'] / 1e6:.2f}M FLOPs")
    print("filters kept: " + ", ".join(f"{name} {kept}/{total}" for name, (kept, total) in out["kept_per_layer"].items()))
    if "accuracy" in out:
        print(f"accuracy {100 * out['accuracy']:.2f}% on {out['images']:,} images (loss {out['loss']:.4f})")
    return 0


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# nasbench201 commands: query
# --------------------------------------------------------------------------------------------------

def add_nasbench201_commands(sub) -> None:
    p = sub.add_parser(
        "nasbench201", formatter_class=_Formatter, help="NAS-Bench-201: query the bundled CIFAR-10 table",
        description="NAS-Bench-201: all 15,625 cells with their CIFAR-10 test accuracy (200 epochs, mean over\n"
                    "seeds), bundled. Search it with `searchlab search nasbench201 --strategy evolution`.\n\n"
                    "Examples:\n"
                    "  searchlab nasbench201 query --index 6111\n"
                    "  searchlab nasbench201 query --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                    "skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|' --json\n")
    nsub = p.add_subparsers(dest="nasbench201_command", metavar="COMMAND")
    p.set_defaults(handler=lambda args: p.print_help() or 2)
    q = nsub.add_parser("query", formatter_class=_Formatter, help="look a cell up by arch string or index",
                        description="Print a cell's test accuracy, rank, functional key and how many cells compute\n"
                                    "the same function.\n\nExample:\n  searchlab nasbench201 query --index 6111\n")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--arch", help="the official arch string, |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    g.add_argument("--index", type=int, help="the official index, 0 to 15624")
    q.add_argument("--json", action="store_true", help="print JSON for machines")
    q.set_defaults(handler=_nb201_query)


def _nb201_query(args) -> int:
    from searchlab.search_spaces.nasbench201.space import query

    out = query(args.arch, args.index)
    lines = [f"index       {out['index']}", f"arch        {out['arch']}",
             f"test acc    {out['test_accuracy']:.4f} (CIFAR-10, 200 epochs, mean over seeds)",
             f"rank        {out['rank_by_test_accuracy']:,} of {out['cells']:,} by test accuracy",
             f"key         {out['key']} (shared by {out['equivalent_cells']} cell(s) computing the same function; "
             f"their accuracy {out['equivalent_accuracy']['min']:.4f} to {out['equivalent_accuracy']['max']:.4f})",
             f"computes    {out['expression']}"]
    return _nb101_print(out, args.json, lines)


COMMAND_GROUPS = [add_engine_commands, add_nasbench101_commands, add_nasbench201_commands, add_predictor_commands,
                  add_cyclegan_commands, add_binary_commands, add_pruning_commands, dashboard_commands.add_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    from searchlab import progress

    argv = sys.argv[1:] if argv is None else argv
    progress.enable("--quiet" not in argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
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
