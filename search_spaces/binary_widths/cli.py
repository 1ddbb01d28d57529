"""`searchlab binary describe`: the accounting of a binary network's widths."""

from __future__ import annotations

from searchlab.commands.common import Formatter, print_json
from searchlab.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser(
        "binary", formatter_class=Formatter, help="binary network accounting (params, bits, FLOPs, BOPs)",
        description="Describe binary VGG-Small / ResNet-18 networks: widths, params, size in bits, FLOPs of the\n"
                    "full-precision layers, binary operations (BOPs) and FLOPs + BOPs/64.\n\n"
                    "Examples:\n"
                    "  searchlab binary describe --net vgg-small                 # every preset\n"
                    "  searchlab binary describe --net vgg-small --ratios 0.5 2 1 1 1 0.5\n"
                    "  searchlab binary describe --net resnet18 --preset full-precision --json\n")
    bsub = p.add_subparsers(dest="binary_command", metavar="COMMAND")
    d = bsub.add_parser("describe", help="accounting of presets or of one ratio list", formatter_class=Formatter,
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
        print_json(rows)
        return 0
    print(f"{'name':15s} {'params':>10s} {'size MiB':>9s} {'FLOPs':>10s} {'BOPs':>10s} {'FLOPs+BOPs/64':>14s} {'vs 1x':>6s}  ratios")
    for r in rows:
        print(f"{r['name']:15s} {r['params'] / 1e6:9.2f}M {r['size_bits'] / 8 / 2**20:9.3f} {r['flops'] / 1e6:9.1f}M "
              f"{r['bops'] / 1e6:9.1f}M {r['flops_bops64'] / 1e6:13.2f}M {r['cost_ratio']:6.2f}  "
              f"{' '.join(f'{x:g}' for x in r['ratios'])}{'' if r['binary'] else ' (full precision)'}")
    return 0
