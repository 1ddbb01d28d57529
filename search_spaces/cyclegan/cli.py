"""`searchlab cyclegan compare|prune`: compare and prune CycleGAN generators outside a search."""

from __future__ import annotations

from pathlib import Path

from searchlab.commands.common import Formatter, print_json


def add_commands(sub) -> None:
    p = sub.add_parser(
        "cyclegan", formatter_class=Formatter, help="CycleGAN generator tools (apply a searched mask)",
        description="Cut a CycleGAN generator down to a channel mask (a run's cyclegan/masks.json or a 0/1 file).\n\n"
                    "Example:\n"
                    "  searchlab cyclegan prune --checkpoint ckpt/latest_net_G_A.pth --mask runs/cg/cyclegan/masks.json \\\n"
                    "      --side A --out G_A_small.pth\n")
    csub = p.add_subparsers(dest="cyclegan_command", metavar="COMMAND")
    pr = csub.add_parser("prune", help="write the physically pruned generator of a mask", formatter_class=Formatter,
                         description=p.description)
    pr.add_argument("--checkpoint", required=True, help="the full generator state_dict (.pth)")
    pr.add_argument("--mask", required=True, help="mask file: 0/1 text, JSON list, or JSON object keyed by side")
    pr.add_argument("--side", default="A", choices=("A", "B"), help="which mask of a JSON object to use (default: A)")
    pr.add_argument("--out", required=True, help="where to write the pruned state_dict (.pth)")
    pr.add_argument("--json", action="store_true", help="print JSON for machines")
    pr.set_defaults(handler=_cyclegan_prune)
    cmp = csub.add_parser("compare", help="PSNR of a pruned generator's outputs against the full generator's",
                          formatter_class=Formatter,
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
        print_json(out)
        return 0
    for split, r in out.items():
        print(f"{split}{args.side}: PSNR {r['psnr']:.2f} dB of the pruned outputs against the full generator's, "
              f"over {r['images']} image(s) (MSE {r['mse']:.3g}; per image "
              + ", ".join(f"{p:.2f}" for p in r["psnr_per_image"]) + ")")
    return 0


def _cyclegan_prune(args) -> int:
    from searchlab import io
    from searchlab.search_spaces import cyclegan as cg

    gen = cg.load_generator(args.checkpoint)
    bits = cg.read_mask_file(args.mask, gen, args.side)
    small = cg.prune(gen, bits)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    io.save_torch(small.state_dict(), out)
    full, pruned = cg.describe_generator(gen), cg.describe_generator(small)
    summary = {"out": str(out), "full": full, "pruned": pruned, "param_ratio": full["params"] / pruned["params"]}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out}: {full['params']:,} -> {pruned['params']:,} parameters "
              f"({summary['param_ratio']:.2f}x fewer), {full['size_mb']} -> {pruned['size_mb']} MB")
    return 0
