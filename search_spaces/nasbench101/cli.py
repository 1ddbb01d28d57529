"""`searchlab nasbench101 ...`: enumerate, import, query, stats and draw (the work is in commands.py)."""

from __future__ import annotations

from searchlab.commands.common import Formatter, print_record
from searchlab.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser(
        "nasbench101", formatter_class=Formatter, help="NAS-Bench-101: enumerate, import, query, stats, draw",
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

    q = nsub.add_parser("query", formatter_class=Formatter, help="look a cell up by hash or spec",
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

    s = nsub.add_parser("stats", formatter_class=Formatter, help="counts, accuracy distribution, best cells",
                        description="Summarise a table: cells by vertex count, test-accuracy distribution, best cells."
                                    "\n\nExample:\n  searchlab nasbench101 stats --top 10\n")
    s.add_argument("--db", help=db_help)
    s.add_argument("--top", type=int, default=5, help="how many best cells to list (default: 5)")
    s.add_argument("--json", action="store_true", help="print JSON for machines")
    s.set_defaults(handler=_nb101_stats)

    d = nsub.add_parser("draw", formatter_class=Formatter, help="draw a cell as a labelled graph (PNG)",
                        description="Draw a cell (vertices by depth, labelled with their operations).\n\n"
                                    "Example:\n  searchlab nasbench101 draw --hash 00005c142e6f48ac74fdcf73e3439874 "
                                    "--out cell.png\n")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--hash", help="the cell's module hash (32 hex characters)")
    g.add_argument("--spec", help=spec_help)
    d.add_argument("--db", help=db_help)
    d.add_argument("--out", required=True, help="PNG file to write")
    d.set_defaults(handler=_nb101_draw)

    e = nsub.add_parser("enumerate", formatter_class=Formatter, help="generate every unique cell with its hash",
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

    i = nsub.add_parser("import", formatter_class=Formatter, help="import an official .tfrecord release file",
                        description="Stream an official release file into a table database (no TensorFlow).\n\n"
                                    "Example:\n  searchlab nasbench101 import nasbench_only108.tfrecord --db nb101.sqlite\n"
                                    "  searchlab nasbench101 query --db nb101.sqlite --hash 00005c142e6f48ac74fdcf73e3439874\n")
    i.add_argument("file", metavar="FILE", help="nasbench_only108.tfrecord or nasbench_full.tfrecord")
    i.add_argument("--db", required=True, help="the SQLite database to write (replaced atomically)")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    i.set_defaults(handler=_nb101_import)


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
    return print_record(out, args.json, lines)


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
    return print_record(out, args.json, lines)


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
    return print_record(out, args.json, lines)


def _nb101_import(args) -> int:
    from searchlab.search_spaces.nasbench101.tfrecord import import_tfrecord

    out = import_tfrecord(args.file, args.db, progress=not args.quiet)
    print(f"imported {out['records']:,} records ({out['cells']:,} cells) into {out['db']}")
    return 0
