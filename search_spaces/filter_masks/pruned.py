"""The `pruned/` folder a prune run writes: model.safetensors plus a checked architecture.json; its writer
and the readers that rebuild the pruned network from it without importing anything the file names."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from searchlab import io
from searchlab.errors import ConfigError, DataError
from searchlab.search_spaces.filter_masks.cost import analyse
from searchlab.search_spaces.filter_masks.cost import measured_flops
from searchlab.search_spaces.filter_masks.prune import prune_model
from searchlab.search_spaces.filter_masks.setup import build_model

ARCH_FORMAT = "searchlab-pruned/1"
MODEL_KWARGS = ("num_classes", "in_channels", "image_size")


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
    try:
        arch = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); restore the folder a prune run wrote") from None
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        found = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise ConfigError(f"{path} is not a searchlab pruned architecture (format {found!r})")
    spec, kwargs, shape = arch.get("model"), arch.get("model_kwargs"), arch.get("input_shape")
    problems = []
    if not isinstance(spec, str) or not spec:
        problems.append("'model' must name the model")
    if not isinstance(kwargs, dict) or any(k not in MODEL_KWARGS or type(v) is not int or not 0 < v <= 65536
                                           for k, v in kwargs.items()):
        problems.append(f"'model_kwargs' may only hold {', '.join(MODEL_KWARGS)} as positive integers")
    if not (isinstance(shape, list) and len(shape) == 4 and all(type(v) is int and 0 < v <= 4096 for v in shape)):
        problems.append("'input_shape' must be 4 positive integers [1, C, H, W]")
    if not isinstance(arch.get("layers"), list) or not all(isinstance(x, str) for x in arch["layers"]):
        problems.append("'layers' must be a list of module names")
    if not isinstance(arch.get("genome"), str) or set(arch["genome"]) - {"0", "1"}:
        problems.append("'genome' must be a string of 0s and 1s")
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}; restore the folder a prune run wrote")
    if ":" in spec and model != spec:
        if model is None:
            raise ConfigError(f"{path} was pruned from the user model {spec}; searchlab does not import code a file "
                              f"names: pass --model {spec} to rebuild it with your factory")
        raise ConfigError(f"--model {model} is not the model {d} was pruned from ({spec}); pass --model {spec}")
    return arch


def load_pruned(directory: str | Path, model: str | None = None) -> nn.Module:
    """Rebuild a pruned network written by a `prune` run (its `pruned/` folder) with its trained weights.
    A folder pruned from a user model needs that model's factory named again in `model` (see
    `read_architecture`)."""
    d = Path(directory)
    arch = read_architecture(d, model)
    try:
        base = build_model(arch["model"], arch["model_kwargs"]).eval()
    except TypeError as exc:  # keyword arguments the model does not take
        raise ConfigError(f"{d / 'architecture.json'}: cannot build {arch['model']} ({exc}); restore the folder a "
                          f"prune run wrote") from None
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
