"""`searchlab compare`: strategies x seeds on a table space, resumable, with a summary table and a regret plot."""

from __future__ import annotations

import sys

from searchlab.commands.common import Formatter, non_negative_int, positive_int, print_json


def add_commands(sub) -> None:
    p = sub.add_parser(
        "compare", formatter_class=Formatter,
        help="compare search strategies over many seeds on a table space (summary table, regret plot)",
        description="Run each strategy once per seed on a table space (nasbench101, nasbench201), where every\n"
                    "cell's accuracy is known, and compare them as NAS papers do: the best cell each run found,\n"
                    "its rank and percentile among all cells, and how often a strategy beats a baseline strategy\n"
                    "on the same seed. Each strategy x seed is an ordinary run folder, OUT/STRATEGY/seed-K, so\n"
                    "`searchlab status` and `report` read it; runs go in parallel over --jobs processes.\n\n"
                    "Resuming: run the same command again (or `searchlab compare --out OUT`): finished runs are\n"
                    "reused, interrupted ones resume where they stopped, missing ones start. Strategies and\n"
                    "seeds may be added later; the space and --max-evals of a comparison stay fixed.\n\n"
                    "A strategy's options follow its name: NAME:option=value,option=value (the fields of\n"
                    "`searchlab search SPACE --strategy NAME --help`). Every run uses the space's table\n"
                    "evaluator with its defaults (test accuracy of the table).\n\n"
                    "Writes OUT/summary.md (the table below), OUT/summary.json (per run and per strategy) and\n"
                    "OUT/regret.png (median regret per query over the seeds, with the 25th-75th percentile band).\n"
                    "Columns: best accuracy of each run's best cell (mean ± std over seeds); its rank percentile\n"
                    "among all cells (lower is better); the median rank; seeds that found a cell of the table's\n"
                    "best accuracy; wins: seeds where the strategy's best beats the baseline's (ties are not wins).\n\n"
                    "Examples:\n"
                    "  searchlab compare nasbench201 --strategies random evolution:population=20,sample_size=5 \\\n"
                    "      --seeds 20 --max-evals 100 --out runs/cmp201\n"
                    "  searchlab compare nasbench101 --strategies random evolution renas --baseline evolution \\\n"
                    "      --seeds 20 --max-evals 434 --out runs/cmp101 --jobs 2\n"
                    "  searchlab compare --out runs/cmp201          # resume it, or summarise it again\n")
    p.add_argument("space", nargs="?", help="nasbench101 or nasbench201 (omit to resume the comparison in --out)")
    p.add_argument("--strategies", nargs="+", metavar="STRATEGY",
                   help="strategies to compare, each NAME or NAME:option=value,... (see `searchlab list`)")
    p.add_argument("--seeds", type=positive_int, metavar="N", help="seeds 0 to N-1 for every strategy (default: 10)")
    p.add_argument("--first-seed", type=non_negative_int, metavar="K", help="start the seeds here (default: 0)")
    p.add_argument("--max-evals", type=positive_int, metavar="N",
                   help="unique cells each run may query (the 'queries' of NAS papers)")
    p.add_argument("--baseline", metavar="STRATEGY",
                   help="the strategy others are counted against, seed by seed: as written in --strategies, "
                        "or its bare name where only one has it (default: the first one)")
    p.add_argument("--out", required=True, metavar="DIR", help="experiment folder: one run folder per strategy x seed")
    p.add_argument("--jobs", type=positive_int,
                   help="runs at once, each in its own process (default: the number of CPU cores)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip regret.png")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(handler=_cmd_compare)


def _cmd_compare(args) -> int:
    from searchlab.engine.comparison import PLOT_NAME, TABLE_NAME, compare, markdown_table
    from searchlab.errors import ConfigError

    if args.space is None and (args.strategies or args.max_evals or args.seeds or args.first_seed is not None
                               or args.baseline):
        raise ConfigError("to change or extend a comparison, name its space and strategies again: `searchlab "
                          "compare SPACE --strategies ... --max-evals N --seeds N --out DIR`")
    if args.space is not None and not (args.strategies and args.max_evals):
        raise ConfigError("give --strategies and --max-evals, e.g. `searchlab compare nasbench201 --strategies "
                          "random evolution --max-evals 100 --out runs/cmp`")
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        summary = compare(args.space, args.strategies, out=args.out,
                          seeds=list(range(args.first_seed or 0, (args.first_seed or 0) + (args.seeds or 10))),
                          max_evals=args.max_evals,
                          baseline=args.baseline, jobs=args.jobs, plot=args.plot, log=say)
    except KeyboardInterrupt:
        print(f"interrupted; the runs so far are stored: `searchlab compare --out {args.out}` goes on",
              file=sys.stderr)
        return 130
    if args.json:
        print_json(summary)
        return 0
    print(f"{summary['space']}: {len(summary['seeds'])} seeds x {len(summary['strategies'])} strategies, "
          f"{summary['max_evals']} queries each; table best {summary['table_best']:.4f} "
          f"({summary['cells']:,} cells)\n")
    print(markdown_table(summary))
    written = f"{args.out}/{TABLE_NAME}" + (f", {args.out}/{PLOT_NAME}" if args.plot else "")
    print(f"\nwritten: {written}, {args.out}/summary.json")
    return 0
