"""`searchlab status`, `report`, `trials` and `list`: read runs and the registry, print them."""

from __future__ import annotations

import json
import sys

from searchlab import registry
from searchlab.commands.common import Formatter, fmt, load_plugins, positive_int, print_json, short
from searchlab.objectives import sign
from searchlab.output.report import TRIAL_STATES
from searchlab.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser("status", formatter_class=Formatter, help="trials, best so far and budget used of a run",
                       description="Show a run's trial counts, best trial and budget use.\n\n"
                                   "Example:\n  searchlab status runs/evo --json\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser("report", formatter_class=Formatter, help="best-so-far curve and Pareto front of a run",
                       description="Summarise a run: best-so-far curve and, with several objectives, the\n"
                                   "Pareto front; optionally as a PNG plot.\n\n"
                                   "Example:\n  searchlab report runs/evo --plot runs/evo/report.png\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--plot", metavar="PNG", help="write a plot to this PNG file")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("trials", formatter_class=Formatter,
                       help="every trial of a run: key, objectives, state, cost, error",
                       description="List a run's trials, one line each (--json or --csv for machines).\n\n"
                                   "Examples:\n  searchlab trials runs/evo --sort accuracy --limit 10\n"
                                   "  searchlab trials runs/evo --state failed\n"
                                   "  searchlab trials runs/evo --csv > trials.csv\n")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--state", choices=TRIAL_STATES,
                   help="only trials in this state (cached: answered from an earlier trial of the same key)")
    p.add_argument("--sort", metavar="OBJECTIVE", help="sort by this objective, best first (as the run optimises it)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="show at most N trials")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON for machines")
    out.add_argument("--csv", action="store_true", help="print CSV (one column per objective and cost)")
    p.set_defaults(handler=_cmd_trials)

    p = sub.add_parser("list", help="registered spaces, strategies, evaluators and predictors",
                       description="List what can be searched and how.\n\nExample:\n  searchlab list --json\n",
                       formatter_class=Formatter)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(handler=_cmd_list)


def _cmd_status(args) -> int:
    from searchlab.output import report
    from searchlab.store.run_view import RunView
    with RunView.open(args.run_dir) as run:
        info = report.status(run)
    if args.json:
        print_json(info)
        return 0
    counts = info["trials"]
    print(f"run {info['run']}: space {info['space']}, strategy {info['strategy']}, evaluator {info['evaluator']}, "
          f"seed {info['seed']}")
    print("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for name, b in info["budget"].items():
        if b["limit"] is not None:
            print(f"budget {name}: {fmt(b['used'])} of {fmt(b['limit'])}")
    if info["size_budget"]:
        print(f"size budget: {info['size_budget']['summary']}")
    if info["best"]:
        best = info["best"]
        print(f"best: trial {best['id']}  " + ", ".join(f"{k}={fmt(v)}" for k, v in best["result"]["objectives"].items()))
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
    from searchlab.output.report import filter_trials, trial_row
    from searchlab.store.run_view import RunView

    with RunView.open(args.run_dir) as run:
        objectives = run.objectives
        rows = filter_trials([trial_row(t) for t in run.trials()], args.state)
    if args.sort:
        if args.sort not in objectives:
            raise ConfigError(f"--sort {args.sort}: the run's objectives are {', '.join(objectives)}")
        order = -sign(objectives[args.sort])  # best first
        rows.sort(key=lambda r: (args.sort not in r["objectives"], order * r["objectives"].get(args.sort, 0.0)))
    rows = rows[:args.limit] if args.limit else rows
    if args.json:
        print_json(rows)
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
        values = " ".join(f"{fmt(r['objectives'][o]) if o in r['objectives'] else '-':>12}" for o in objectives)
        seconds = r["cost"].get("seconds")
        tail = r["error"] if r["state"] == "failed" else short(r["key"]) + (
            f"  (= trial {r['cached_from']})" if r["cached_from"] else "")
        print(f"{r['id']:>5} {r['state']:7} {values} {f'{seconds:.3g}' if seconds is not None else '-':>8}  {tail}")


def _cmd_report(args) -> int:
    from searchlab.output import report
    from searchlab.store.run_view import RunView
    with RunView.open(args.run_dir) as run:
        info = report.report(run)
        if args.plot:
            report.plot(run, args.plot)
    if args.json:
        print_json(info)
        return 0
    print(f"run {info['run']}: {info['space']} / {info['strategy']} / {info['evaluator']}")
    if info["size_budget"]:
        print(f"size budget: {info['size_budget']['summary']}")
    print("best so far (evaluated -> value):")
    for point in info["best_so_far"]:
        print(f"  {point['evaluated']:6d}  {fmt(point['value'])}")
    if info.get("pareto_front"):
        print(f"Pareto front ({len(info['pareto_front'])} trials):")
        for point in info["pareto_front"]:
            print("  " + ", ".join(f"{k}={fmt(v)}" for k, v in point.items()))
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _cmd_list(args) -> int:
    load_plugins()
    info = {
        "spaces": {n: {"help": e.help, "default_strategy": e.default_strategy, "default_evaluator": e.default_evaluator}
                   for n, e in sorted(registry.spaces().items())},
        "strategies": {n: {"help": e.help, "spaces": e.spaces or "any"} for n, e in sorted(registry.strategies().items())},
        "evaluators": {n: {"help": e.help, "spaces": e.spaces or "any"} for n, e in sorted(registry.evaluators().items())},
        "predictors": {n: {"help": e.help} for n, e in sorted(registry.predictors().items())},
    }
    if args.json:
        print_json(info)
        return 0
    for group, entries in info.items():
        print(f"{group}:")
        for name, e in entries.items():
            extra = f"  [spaces: {', '.join(e['spaces'])}]" if isinstance(e.get("spaces"), tuple) else ""
            summary = e["help"].split("; e.g.")[0].splitlines()[0] if e["help"] else ""
            print(f"  {name:16s} {summary}{extra}")
    return 0
