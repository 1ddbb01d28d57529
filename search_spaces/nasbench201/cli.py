"""`searchlab nasbench201 query`: a NAS-Bench-201 cell's accuracies."""

from __future__ import annotations

from searchlab.commands.common import Formatter, print_record
from searchlab.search_spaces.nasbench201.table import DATASETS


def add_commands(sub) -> None:
    p = sub.add_parser(
        "nasbench201", formatter_class=Formatter, help="NAS-Bench-201: query the bundled CIFAR-10 table",
        description="NAS-Bench-201: all 15,625 cells with their CIFAR-10 test accuracy (200 epochs, mean over\n"
                    "seeds), bundled, and their CIFAR-100 and ImageNet16-120 accuracies (--dataset). Search it\n"
                    "with `searchlab search nasbench201 --strategy evolution [--dataset cifar100]`.\n\n"
                    "Examples:\n"
                    "  searchlab nasbench201 query --index 6111\n"
                    "  searchlab nasbench201 query --best --dataset imagenet16-120\n"
                    "  searchlab nasbench201 query --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                    "skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|' --json\n")
    nsub = p.add_subparsers(dest="nasbench201_command", metavar="COMMAND")
    p.set_defaults(handler=lambda args: p.print_help() or 2)
    q = nsub.add_parser("query", formatter_class=Formatter, help="look a cell up by arch string or index",
                        description="Print a cell's test accuracy, rank, functional key and how many cells compute\n"
                                    "the same function.\n\nExamples:\n  searchlab nasbench201 query --index 6111\n"
                                    "  searchlab nasbench201 query --best --dataset cifar100\n")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--arch", help="the official arch string, |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    g.add_argument("--index", type=int, help="the official index, 0 to 15624")
    g.add_argument("--best", action="store_true", help="the cell of the best test accuracy on --dataset")
    q.add_argument("--dataset", default="cifar10", choices=list(DATASETS),
                   help="whose test accuracy and rank: cifar10 (default), cifar100, imagenet16-120, or cifar10-valid "
                        "(CIFAR-10 test accuracy of networks trained on the 25,000-image cifar10-valid split)")
    q.add_argument("--json", action="store_true", help="print JSON for machines")
    q.set_defaults(handler=_nb201_query)


def _nb201_query(args) -> int:
    from searchlab.search_spaces.nasbench201.space import query

    out = query(args.arch, args.index, dataset=args.dataset, best=args.best)
    lines = [f"index       {out['index']}", f"arch        {out['arch']}",
             f"test acc    {out['test_accuracy']:.4f} ({DATASETS[args.dataset][1]})",
             f"rank        {out['rank_by_test_accuracy']:,} of {out['cells']:,} by test accuracy",
             f"key         {out['key']} (shared by {out['equivalent_cells']} cell(s) computing the same function; "
             f"their accuracy {out['equivalent_accuracy']['min']:.4f} to {out['equivalent_accuracy']['max']:.4f})",
             f"computes    {out['expression']}"]
    return print_record(out, args.json, lines)
