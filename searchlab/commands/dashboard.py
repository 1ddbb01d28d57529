"""`searchlab dashboard RUN [RUN ...]`: the live view of runs in the browser (searchlab/output/dashboard.py)."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser(
        "dashboard", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="watch runs live in the browser (optuna-dashboard; needs searchlab[dashboard])",
        description="Serve optuna-dashboard over a read-only mirror of the runs: one study per run with its\n"
                    "best so far, trials table, Pareto front and failures, refreshed while searches write them.\n"
                    "Nothing is ever written to a run, and no file is created in it. A run its search has not\n"
                    "created yet is waited for (--wait). Needs `pip install 'searchlab[dashboard]'`.\n\n"
                    "Examples:\n"
                    "  searchlab dashboard runs/evo\n"
                    "  searchlab dashboard runs/evo runs/rand --port 8081 --refresh 2\n")
    p.add_argument("run_dirs", metavar="RUN", nargs="+", help="run directories (as given to --run)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the view has no login)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    p.add_argument("--refresh", type=float, default=5.0, metavar="SECONDS",
                   help="re-read the runs every this many seconds (default 5)")
    p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="wait this long for a run that its search has not created yet (default 60; 0: do not wait)")
    p.set_defaults(handler=_cmd_dashboard)


def _cmd_dashboard(args) -> int:
    from searchlab.output.dashboard import Dashboard, require_optuna, wait_for_runs

    require_optuna()  # the missing extra is said before any wait
    try:
        wait_for_runs(args.run_dirs, args.wait)
    except KeyboardInterrupt:
        print("dashboard stopped")
        return 0
    board = Dashboard(args.run_dirs, host=args.host, port=args.port, refresh=args.refresh)
    trials = sum(r.trial_count for r in board.mirror.runs)
    print(f"dashboard of {len(board.mirror.runs)} run(s), {trials} trials so far: {board.url}", flush=True)
    print(f"re-read every {args.refresh:g}s; Ctrl-C stops it", flush=True)
    try:
        board.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped")
    return 0
