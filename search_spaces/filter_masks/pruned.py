"""The `pruned/` folder a prune run writes: model.safetensors plus a checked architecture.json; its writer
and the readers that rebuild the pruned network from it without importing anything the file names."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from searchlab import io
from searchlab.errors import ConfigError, DataError
from searchlab.search_spaces.filter_masks.costs import analyse, measured_flops
from searchlab.search_spaces.filter_masks.prune import prune_model
from searchlab.search_spaces.filter_masks.setup import build_model

ARCH_FORMAT = "searchlab-pruned/1"
MODEL_KWARGS = ("num_classes", "in_channels", "image_size")
MAX_SIDE = 4096  # image height and width
KWARG_MOST = {"num_classes": 1_000_000, "in_channels": 4, "image_size": MAX_SIDE}  # (RGBA at most)
MAX_VALUES = 2**27  # weights of the unpruned model, and activations of one image (512 MB each in float32)


def write_pruned(directory: str | Path, net: nn.Module, *, model: str, model_kwargs: dict, input_shape: list[int],
                 layers: list[str], genome: str, kept_per_layer: dict) -> Path:
    """Write the folder `load_pruned` reads: the pruned network's weights and its architecture.json."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    io.save_safetensors(net.state_dict(), d / "model.safetensors")
    io.write_json(d / "architecture.json", {
        "format": ARCH_FORMAT, "model": model, "model_kwargs": model_kwargs, "input_shape": input_shape,
        "layers": layers, "genome": genome, "kept_per_layer": kept_per_layer,
        "input_scaling": "uint8 / 127.5 - 1 (searchlab.training.trainer.to_float)"})
    return d


def read_architecture(directory: str | Path, model: str | None = None) -> dict:
    """The checked architecture.json of a pruned folder. Nothing it says is imported or run: a built-in
    model is built by name, and a user factory (`package.module:factory`) only when the caller names the
    same factory in `model` (the `--model` flag), so a shared folder cannot make searchlab import code."""
    d = Path(directory)
    path = d / "architecture.json"
    if not path.is_file():
        raise ConfigError(f"{d} holds no architecture.json; pass the pruned/ folder of a prune run")
    arch = io.read_json(path, "pruned architecture", "restore the folder a prune run wrote")
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        found = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise ConfigError(f"{path} is not a searchlab pruned architecture (format {found!r:.60})")
    problems = _problems(arch)
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}; restore the folder a prune run wrote")
    spec = arch["model"]
    if ":" in spec and model != spec:
        if model is None:
            raise ConfigError(f"{path} was pruned from the user model {spec}; searchlab does not import code a file "
                              f"names: pass --model {spec} to rebuild it with your factory")
        raise ConfigError(f"--model {model} is not the model {d} was pruned from ({spec}); pass --model {spec}")
    arch.setdefault("kept_per_layer", {})
    return arch


def _is_count(value, most: int) -> bool:
    return type(value) is int and 0 < value <= most


def _problems(arch: dict) -> list[str]:
    """What is wrong with the fields of an architecture.json, as short phrases (none when it is sound)."""
    spec, kwargs, shape = arch.get("model"), arch.get("model_kwargs"), arch.get("input_shape")
    problems = []
    if not isinstance(spec, str) or not spec:
        problems.append("'model' must name the model")
    if not isinstance(kwargs, dict) or any(k not in MODEL_KWARGS or not _is_count(v, KWARG_MOST[k])
                                           for k, v in kwargs.items()):
        problems.append(f"'model_kwargs' may only hold {', '.join(MODEL_KWARGS)} as positive integers "
                        f"(at most {', '.join(f'{k} {v}' for k, v in KWARG_MOST.items())})")
        kwargs = {}
    if not (isinstance(shape, list) and len(shape) == 4 and shape[0] == 1
            and _is_count(shape[1], KWARG_MOST["in_channels"]) and all(_is_count(v, MAX_SIDE) for v in shape[2:])):
        problems.append(f"'input_shape' must be [1, C, H, W] with C at most {KWARG_MOST['in_channels']} and H, W at "
                        f"most {MAX_SIDE}")
    else:
        if kwargs.get("in_channels", shape[1]) != shape[1] or kwargs.get("image_size", shape[3]) != shape[3]:
            problems.append("'input_shape' does not match model_kwargs' in_channels and image_size")
    if not isinstance(arch.get("layers"), list) or not all(isinstance(x, str) for x in arch["layers"]):
        problems.append("'layers' must be a list of module names")
    if not isinstance(arch.get("genome"), str) or set(arch["genome"]) - {"0", "1"}:
        problems.append("'genome' must be a string of 0s and 1s")
    kept = arch.get("kept_per_layer", {})
    if not isinstance(kept, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(type(n) is int for n in v) and 0 <= v[0] <= v[1]
            for v in kept.values()):
        problems.append("'kept_per_layer' must map layer names to [kept, total] filter counts")
    return problems


def _check_size(arch: dict, path: Path) -> None:
    """Build the model on the meta device (nothing allocated) and refuse one whose weights or whose
    activations for one image exceed MAX_VALUES, or that cannot take `input_shape`, before any real
    tensor is made."""
    with torch.device("meta"):
        try:
            base = build_model(arch["model"], arch["model_kwargs"])
        except (TypeError, ValueError, RuntimeError) as exc:  # arguments the model does not take
            raise ConfigError(f"{path}: cannot build {arch['model']} ({str(exc)[:120]}); restore the folder a "
                              f"prune run wrote") from None
        params = sum(p.numel() for p in base.parameters())
        if params > MAX_VALUES:
            raise ConfigError(f"{path}: {arch['model']} with {arch['model_kwargs']} has {params:,} weights, more than "
                              f"the {MAX_VALUES:,} a pruned folder may ask for; restore the folder a prune run wrote")
        sizes = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() if isinstance(
            out, torch.Tensor) else 0)) for m in base.modules()]
        try:
            base.eval()(torch.empty(arch["input_shape"]))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{path}: {arch['model']} cannot take an input of shape {arch['input_shape']} "
                              f"({str(exc).splitlines()[0][:100]}); restore the folder a prune run wrote") from None
        finally:
            for h in hooks:
                h.remove()
        if sum(sizes) > MAX_VALUES:
            raise ConfigError(f"{path}: one {arch['input_shape']} input makes {sum(sizes):,} activations in "
                              f"{arch['model']}, more than the {MAX_VALUES:,} a pruned folder may ask for; restore "
                              f"the folder a prune run wrote")


def load_pruned(directory: str | Path, model: str | None = None) -> nn.Module:
    """Rebuild a pruned network written by a `prune` run (its `pruned/` folder) with its trained weights.
    A folder pruned from a user model needs that model's factory named again in `model` (see
    `read_architecture`)."""
    d = Path(directory)
    arch = read_architecture(d, model)
    _check_size(arch, d / "architecture.json")
    base = build_model(arch["model"], arch["model_kwargs"]).eval()
    plan = analyse(base, torch.zeros(arch["input_shape"]), layers=arch["layers"] or None)
    if plan.n_bits != len(arch["genome"]):
        raise ConfigError(f"{d / 'architecture.json'}: the model now has {plan.n_bits} prunable groups, the mask "
                          f"{len(arch['genome'])}")
    net = prune_model(base, plan, arch["genome"])
    io.load_into(net, d / "model.safetensors", "pruned weights")
    return net.eval()


def inspect_pruned(directory: str | Path, *, data: str | None = None, device: str = "auto",
                   model: str | None = None) -> dict:
    """Rebuild a pruned network and describe it; with `data`, also its accuracy on that set's test split."""
    d = Path(directory)
    if (d / "pruned" / "architecture.json").is_file():
        d = d / "pruned"
    net = load_pruned(d, model)
    arch = read_architecture(d, model)
    example = torch.zeros(arch["input_shape"])
    out = {"model": arch["model"], "params": sum(p.numel() for p in net.parameters()),
           "flops": measured_flops(net, example), "kept_per_layer": arch["kept_per_layer"]}
    if data:
        from searchlab.training.data import load_classification
        from searchlab.training.trainer import evaluate_classifier

        loaded = load_classification(data, image_size=arch["input_shape"][-1])
        split = loaded.test if loaded.test is not None and len(loaded.test) else loaded.train
        if len(split) == 0:
            raise DataError(f"the data set {data} is empty; point --data at a set with labelled images")
        if tuple(split.x.shape[1:]) != tuple(arch["input_shape"][1:]):
            raise DataError(f"{data} has images of shape {tuple(split.x.shape[1:])}, the network takes "
                            f"{tuple(arch['input_shape'][1:])}")
        out.update({"images": len(split), **evaluate_classifier(net, split, device=device)})
    return out
