"""`searchlab pruned DIR`: rebuild and describe a network a prune run wrote."""

from __future__ import annotations

from searchlab.commands.common import Formatter, print_json


def add_commands(sub) -> None:
    p = sub.add_parser(
        "pruned", formatter_class=Formatter, help="rebuild a pruned network from a prune run and describe it",
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
    from searchlab.search_spaces.filter_masks.pruned import inspect_pruned

    out = inspect_pruned(args.pruned_dir, data=args.data, device=args.device, model=args.model)
    if args.json:
        print_json(out)
        return 0
    print(f"{out['model']} (pruned): {out['params']:,} parameters, {out['flops'] / 1e6:.2f}M FLOPs")
    print("filters kept: " + ", ".join(f"{name} {kept}/{total}" for name, (kept, total) in out["kept_per_layer"].items()))
    if "accuracy" in out:
        print(f"accuracy {100 * out['accuracy']:.2f}% on {out['images']:,} images (loss {out['loss']:.4f})")
    return 0
