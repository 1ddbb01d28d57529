"""`searchlab search` and `searchlab resume`: start a run and drive it (progress, summary, final step)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from searchlab import registry
from searchlab.commands.common import (Formatter, Parser, duration, fmt, load_plugins, non_negative_float,
                                       positive_float, positive_int, print_json)
from searchlab.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser(
        "search", formatter_class=Formatter, add_help=False,
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
        "resume", formatter_class=Formatter, help="continue a stopped or killed run",
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


ENGINE_FLAGS = {"strategy", "evaluator", "seed", "run", "backend", "workers", "device", "config", "max_evals",
                "max_time", "max_epochs", "max_cost", "quiet", "json", "verbose", "finalize", "ray_address",
                "gpus_per_trial", "cpus_per_trial"}



def _add_budget_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("budgets (any combination; checked between trials)")
    g.add_argument("--max-evals", type=positive_int, help="unique candidates to evaluate (the 'queries' of NAS papers)")
    g.add_argument("--max-time", type=duration, help="wall clock, e.g. 90s, 20m, 2h")
    g.add_argument("--max-epochs", type=positive_float, help="total training epochs over all trials")
    g.add_argument("--max-cost", type=positive_float, help="simulated seconds reported by a table evaluator")


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar or status lines on stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--verbose", action="store_true", help="progress bars inside each evaluation too")
    p.add_argument("--no-finalize", dest="finalize", action="store_false",
                   help="skip the space's final step (e.g. fine-tuning the best) after the search")


def _search_parser(space_name: str, strategy_name: str, evaluator_name: str,
                   listing: bool = True) -> argparse.ArgumentParser:
    """The flags of one space + strategy + evaluator. `listing`: name every known strategy and evaluator
    in the help (imports every plug-in, so only when the help is printed)."""
    from searchlab import options
    space = registry.space(space_name)
    strat = registry.strategy(strategy_name)
    evaluator = registry.evaluator(evaluator_name)
    example_budget = getattr(strat.config() if strat.config else None, "planned_queries", 100)
    p = Parser(
        prog=f"searchlab search {space_name}", formatter_class=Formatter,
        description=f"{space.help}\n\nStrategy {strat.name}: {strat.help}\nEvaluator {evaluator.name}: {evaluator.help}\n\n"
                    f"Example:\n  searchlab search {space_name} --strategy {strategy_name} --max-evals {example_budget} "
                    f"--seed 0 --run runs/{space_name}\n")
    g = p.add_argument_group("run")
    known_strategies = ", ".join(registry.strategies()) if listing else "see `searchlab list`"
    known_evaluators = ", ".join(registry.evaluators()) if listing else "see `searchlab list`"
    g.add_argument("--strategy", default=space.default_strategy,
                   help=f"search strategy (default: {space.default_strategy}); known: {known_strategies}")
    g.add_argument("--evaluator", default=space.default_evaluator,
                   help=f"how candidates are scored (default: {space.default_evaluator}); known: {known_evaluators}")
    g.add_argument("--seed", type=int, default=0, help="run seed; every trial's seed derives from it (default: 0)")
    g.add_argument("--run", metavar="DIR", help="run directory (default: runs/SPACE-STRATEGY-TIME)")
    g.add_argument("--backend", default="local", choices=["local", "processes", "ray"],
                   help="where evaluations run (default: local)")
    g.add_argument("--workers", type=positive_int, default=1, help="trials in flight at once (default: 1)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda:0, or a "
                                                     "comma list, one per worker (default: auto)")
    g.add_argument("--config", metavar="FILE", help="JSON or TOML file of option values; flags override it")
    _add_ray_flags(g)
    _add_budget_flags(p)
    _add_output_flags(p)
    options.add_flags(p, [space.config, strat.config, evaluator.config], seen=set(ENGINE_FLAGS))
    return p


def _cmd_search(args) -> int:
    from searchlab import options
    from searchlab.engine import run_config

    load_plugins()
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
    pre = Parser(add_help=False, prog=f"searchlab search {args.space}")
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
    parser = _search_parser(args.space, strategy_name, evaluator_name, listing=args.want_help)
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
    from searchlab.engine import runner
    budget = runner.Budget(max_evals=args.max_evals, max_time=args.max_time, max_epochs=args.max_epochs,
                           max_cost=args.max_cost)
    return _drive(args.run_dir, budget, args.workers, args.backend, quiet=args.quiet, as_json=args.json,
                  finalize_again=args.finalize_again,
                  verbose=args.verbose, do_finalize=args.finalize, overrides=_ray_resume_overrides(args))


def _drive(run_dir, budget, workers, backend, *, quiet: bool, as_json: bool, verbose: bool, do_finalize: bool,
           overrides: dict | None = None, finalize_again: bool = False) -> int:
    from searchlab.engine import run_config, runner
    from searchlab.store.run_store import RunStore

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
        if final and final.get("warning"):  # a result at chance or far below its reference (result_quality.py)
            print(f"warning: {final['warning']}", file=sys.stderr)
    summary = {"run": str(run_dir), "stopped_by": outcome.reason, "trials": outcome.told,
               "evaluated": outcome.evaluated, "best": outcome.best, "final": final}
    if as_json:
        print_json(summary)
    else:
        print(_describe_outcome(summary, objectives))
    if outcome.reason == "interrupted":
        return 130
    if outcome.best is None and outcome.evaluated:
        from searchlab.output import report
        from searchlab.store.run_view import RunView
        with RunView.open(run_dir) as run:
            reasons = report.status(run)["failures"]
        if reasons:
            print(f"error: every trial failed; most common reason ({reasons[0]['count']}x): {reasons[0]['error']}",
                  file=sys.stderr)
            return 1
    return 0


_REASONS = {"finished": "the strategy finished", "max_evals": "--max-evals reached", "max_time": "--max-time reached",
            "max_epochs": "--max-epochs reached", "max_cost": "--max-cost reached",
            "exhausted": "the strategy has no new candidates", "interrupted": "interrupted (resumable)",
            "repeating": "the strategy keeps proposing candidates already evaluated (most proposals were answered "
                         "from the store); a larger --population or another strategy explores further"}


def _describe_outcome(summary: dict, objectives: dict) -> str:
    lines = [f"run {summary['run']}: {summary['trials']} trials, {summary['evaluated']} evaluated; stopped: "
             f"{_REASONS.get(summary['stopped_by'], summary['stopped_by'])}"]
    best = summary["best"]
    if best:
        objs = ", ".join(f"{k}={fmt(v)}" for k, v in best["result"]["objectives"].items())
        lines.append(f"best: trial {best['id']}  {objs}")
        lines.append(f"      key {best['key']}")
        genome = json.dumps(best["genome"])
        lines.append(f"      genome {genome if len(genome) <= 300 else genome[:240] + ' ... (whole: searchlab trials --json)'}")
    else:
        lines.append("best: no successful trial yet")
    if summary.get("final"):
        for k, v in summary["final"].items():
            lines.append(f"{k}: {fmt(v) if not isinstance(v, (dict, list)) else json.dumps(v, default=str)}")
    lines.append(f"resume with: searchlab resume {summary['run']} [--max-evals N]   report: searchlab report {summary['run']}")
    return "\n".join(lines)


class _progress_bar:
    """Progress of the search: evaluated candidates and the best primary objective so far."""

    def __init__(self, total, objectives):
        from searchlab import progress
        self.name = next(iter(objectives), None)
        self.bar = progress.bar(total=total, desc="searching", unit="eval", show=True)
        self.seen = 0

    def update(self, info: dict) -> None:
        self.bar.update(info["evaluated"] - self.seen)
        self.seen = info["evaluated"]
        best = info.get("best")
        if best is not None and self.name and best.result and self.name in best.result.objectives:
            self.bar.set_postfix_str(f"best {self.name}={best.result.objectives[self.name]:.5g}", refresh=False)

    def close(self) -> None:
        self.bar.close()


RAY_FLAGS = ("ray_address", "gpus_per_trial", "cpus_per_trial")


def _add_ray_flags(g) -> None:
    g.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="with --backend ray: join this Ray cluster (auto = the one `ray start` made here); "
                        "default: start a local Ray instance for the run")
    g.add_argument("--gpus-per-trial", type=non_negative_float, metavar="G",
                   help="with --backend ray: GPUs Ray reserves for each trial, which uses exactly those (default: 0)")
    g.add_argument("--cpus-per-trial", type=positive_float, metavar="C",
                   help="with --backend ray: CPUs Ray reserves for each trial (default: 1)")


def _ray_search_extra(values: dict) -> dict | None:
    given = [k for k in RAY_FLAGS if values.get(k) is not None]
    if values.get("backend", "local") != "ray":
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} only applies to --backend ray; add --backend ray")
        return None
    from searchlab.engine.ray_backend import ray_config
    return ray_config(values.get("ray_address"), values.get("gpus_per_trial"), values.get("cpus_per_trial"),
                      values.get("device", "auto"))


def _ray_resume_overrides(args) -> dict | None:
    given = {k: getattr(args, k) for k in RAY_FLAGS if getattr(args, k) is not None}
    if args.backend != "ray" and not given:
        return None
    from searchlab.store.run_store import RunStore
    with RunStore.open(args.run_dir) as peek:
        config = peek.config
    if (args.backend or config.get("backend")) != "ray":
        raise ConfigError(f"--{next(iter(given)).replace('_', '-')} only applies to --backend ray; add --backend ray")
    merged = {k: given.get(k, config.get(k)) for k in RAY_FLAGS}
    from searchlab.engine.ray_backend import ray_config
    return ray_config(merged["ray_address"], merged["gpus_per_trial"], merged["cpus_per_trial"],
                      config.get("device", "auto"))
