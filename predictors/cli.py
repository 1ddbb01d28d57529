"""`searchlab predictor train|eval` and `searchlab predict` (the work is in commands.py)."""

from __future__ import annotations

from pathlib import Path

from searchlab.commands.common import Formatter, print_json


_EXACT_HELP = ("float32 throughout (default: bfloat16 inference on a CPU that computes it natively: "
               "about 2.3x faster, the ranking practically unchanged)")


def add_commands(sub) -> None:
    from searchlab.predictors.configs import BlendConfig, ReNASConfig, SemiGCNConfig
    from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
    from searchlab.options import add_flags
    from searchlab.search_spaces.nasbench201.table import DATASETS

    p = sub.add_parser(
        "predictor", formatter_class=Formatter, help="train and evaluate NAS-Bench-101 and -201 performance predictors",
        description="Performance predictors for NAS-Bench-101 and NAS-Bench-201 cells: the ReNAS feature-tensor\n"
                    "ranker, the semi-supervised GCN assessor, the graph transformer (pretrained without labels on\n"
                    "every cell; the best ranker from a few hundred labels) and the blend of the last two, trained\n"
                    "on cells sampled from the bundled table.\n\n"
                    "Examples:\n"
                    "  searchlab predictor train --kind renas --labels 424 --seed 0 --out preds/renas\n"
                    "  searchlab predictor train --kind semi-gcn --labels 172 --unlabeled 10000 --out preds/gcn\n"
                    "  searchlab predictor train --kind blend --labels 424 --out preds/blend\n"
                    "  searchlab predictor train --kind graph-transformer --space nasbench201 --labels 469 "
                    "--out preds/nb201\n"
                    "  searchlab predictor eval preds/renas --test 10000\n"
                    "  searchlab predict preds/renas --all --top 10\n")
    psub = p.add_subparsers(dest="predictor_command", metavar="COMMAND")
    p.set_defaults(handler=lambda args: p.print_help() or 2)

    t = psub.add_parser("train", formatter_class=Formatter, help="fit a predictor on cells sampled from the table",
                        description="Sample --labels cells of the table (seeded), fit a predictor on their --target\n"
                                    "and save it to --out (predictor.json + weights.safetensors).\n\n"
                                    "Examples:\n"
                                    "  searchlab predictor train --kind renas --labels 424 --seed 0 --out preds/renas\n"
                                    "  searchlab predictor train --kind semi-gcn --labels 100 --unlabeled 10000 "
                                    "--out preds/gcn\n")
    t.add_argument("--kind", required=True, choices=["renas", "semi-gcn", "graph-transformer", "blend"],
                   help="which predictor")
    t.add_argument("--labels", type=int, default=424, help="labelled cells sampled from the table (default: 424)")
    t.add_argument("--seed", type=int, default=0, help="seed of the sample and of the training (default: 0)")
    t.add_argument("--target", default="test_accuracy",
                   help="table column to learn: test_accuracy, flops or params (default: test_accuracy)")
    t.add_argument("--out", required=True, help="directory to write the predictor to")
    t.add_argument("--space", default="nasbench101", choices=["nasbench101", "nasbench201"],
                   help="whose table to sample and learn (default: nasbench101)")
    t.add_argument("--dataset", choices=list(DATASETS),
                   help="--space nasbench201: whose test accuracy to learn (default: cifar10; cifar10-valid is a "
                        "second CIFAR-10 label, networks trained on the 25,000-image cifar10-valid split)")
    t.add_argument("--json", action="store_true", help="print JSON for machines")
    add_flags(t, [ReNASConfig, SemiGCNConfig, GraphTransformerConfig, BlendConfig])
    t.set_defaults(handler=_predictor_train)

    e = psub.add_parser("eval", formatter_class=Formatter, help="rank correlation on held-out cells + scatter plot",
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
    e.add_argument("--dataset", choices=list(DATASETS),
                   help="nasbench201 predictors: score against this label (default: the one trained on), e.g. "
                        "train on cifar10-valid and score on cifar10")
    e.set_defaults(handler=_predictor_eval)

    q = sub.add_parser("predict", formatter_class=Formatter, help="predicted accuracy of NAS-Bench-101 cells",
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
                            "predictor_command", "space", "dataset"}}
    out = commands.train(args.kind, args.labels, args.seed, args.target, args.out, options, space=args.space,
                         dataset=args.dataset)
    if args.json:
        print_json(out)
    else:
        extra = f" + {out['unlabeled']:,} unlabelled" if out["unlabeled"] else ""
        label = f"{out['target']}, {out['dataset']}" if out.get("dataset") else out["target"]
        print(f"trained {out['kind']} on {out['labels']:,} labelled{extra} cells ({label}) in "
              f"{out['train_seconds']:.1f} s; wrote {out['out']}")
    return 0


def _predictor_eval(args) -> int:
    from searchlab.predictors import commands

    out = commands.evaluate(args.dir, args.test, args.seed, args.plot, progress=not args.quiet and not args.json,
                            exact=args.exact, dataset=args.dataset)
    if args.json:
        print_json(out)
        return 0
    label = f"{out['target']}, {out['dataset']}" if out.get("dataset") else out["target"]
    print(f"{out['kind']} trained on {out['labels']:,} cells, tested on {out['test_cells']:,} held-out cells "
          f"({label}):")
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
        print_json(rows)
        return 0
    name = "hash" if rows and "hash" in rows[0] else "arch"
    width = max([32] + [len(r[name]) for r in rows])
    print(("rank  " if args.all else "") + f"{name:<{width}}  predicted")
    for r in rows:
        print((f"{r['rank']:>4}  " if args.all else "") + f"{r[name]:<{width}}  {r['predicted']:.4f}")
    from searchlab import io

    try:
        meta = io.parse_json((Path(args.dir) / "predictor.json").read_bytes()).get("meta", {})
    except (OSError, ValueError, AttributeError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    target = meta.get("target", "the target")
    print(f"(predicted: a ranking score on the scale of {target}, fitted to {meta.get('labels', 'its')} labelled cells; "
          f"it orders cells and can lie outside the real values, so it is not a measured {target})")
    return 0
