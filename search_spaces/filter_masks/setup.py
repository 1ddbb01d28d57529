"""Setting the `prune` space up: build the model, load (or pretrain) its weights, split the data.

The splits are fixed (SPLIT_SEED) so runs with different seeds are compared on the same images; the
pretrained weights go to the run folder so resume and finalize reuse them instead of training again.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from searchlab import io, progress
from searchlab.errors import ConfigError, DataError
from searchlab.protocols import Context
from searchlab.search_spaces.filter_masks.costs import analyse
from searchlab.search_spaces.filter_masks.config import PruneConfig
from searchlab.search_spaces.filter_masks.space import FilterMaskSpace

SPLIT_SEED = 0  # data splits are fixed so runs with different seeds are compared on the same images


def model_kwargs(spec: str, num_classes: int, in_channels: int, image_size: int) -> dict:
    """The constructor arguments a model spec gets (stored in the architecture JSON to rebuild it)."""
    if ":" not in spec and spec.lower().replace("-", "_") in ("lenet5", "vgg_small"):
        return {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    if ":" not in spec:
        return {"num_classes": num_classes, "in_channels": in_channels}
    factory = _factory(spec)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    offered = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    return {k: v for k, v in offered.items() if k in params}


def _factory(spec: str):
    """The user's model factory named by `package.module:factory`, found on the path or in the current
    directory (where a user runs `searchlab` from their project)."""
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --model {spec} ({exc}); check the module is in the "
                          "current directory or on PYTHONPATH") from None
    finally:
        if added:
            sys.path.remove(cwd)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model {spec}: {module_name} has no callable {attr!r}")
    return factory


def build_model(spec: str, kwargs: dict) -> nn.Module:
    """A built-in classifier by name, or `package.module:factory(**kwargs)` for a user model."""
    if ":" not in spec:
        from searchlab.search_spaces.classifiers import build_classifier

        return build_classifier(spec, **kwargs)
    model = _factory(spec)(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


@dataclass
class PruneProblem:
    """What the space, the evaluator and finalize share: the trained model and the data splits."""

    config: PruneConfig
    model: nn.Module
    kwargs: dict
    train: Any
    val: Any
    test: Any
    input_shape: list[int]
    pretrained: dict = field(default_factory=dict)


def _splits(cfg: PruneConfig):
    return _cached_splits(cfg.data, cfg.image_size, cfg.test_size, cfg.train_size, cfg.val_size)


@functools.lru_cache(maxsize=2)
def _cached_splits(data_spec: str, image_size: int, test_size: int, train_size: int, val_size: int):
    """The splits, read once per process (search, resume and finalize each rebuild the space)."""
    from searchlab.training.data import load_classification, split_holdout

    cfg = PruneConfig(data=data_spec, image_size=image_size, test_size=test_size, train_size=train_size,
                      val_size=val_size)
    data = load_classification(cfg.data, image_size=cfg.image_size or None)
    train, test = data.train, data.test
    if len(train) == 0:
        raise DataError(f"the data set {cfg.data} is empty; point --data at a set with labelled images")
    if test is None or len(test) == 0:
        if cfg.test_size <= 0 or cfg.test_size >= len(train):
            raise DataError(f"{cfg.data} has no test split and {len(train)} images; set --test-size between 1 and "
                            f"{len(train) - 1} to hold some out")
        train, test = split_holdout(train, val_fraction=cfg.test_size / len(train), seed=SPLIT_SEED)
    if cfg.val_size >= len(train):
        raise DataError(f"--val-size {cfg.val_size} leaves no training images (the training split has {len(train)}); "
                        "lower --val-size")
    rest = len(train) - cfg.val_size
    train, val = split_holdout(train, val_fraction=cfg.val_size / len(train), seed=SPLIT_SEED + 1,
                               train_size=min(cfg.train_size, rest) if cfg.train_size else None)
    return train, val, test, data.num_classes


def _split_digest(*parts) -> str:
    """A fingerprint of the split images and their order: stored weights are reused only for the same split."""
    import hashlib

    h = hashlib.sha1()
    for part in parts:
        h.update(part.x.numpy().tobytes())
        h.update(part.y.numpy().tobytes())
    return h.hexdigest()


def _pretrain(model: nn.Module, cfg: PruneConfig, train, val, ctx: Context) -> dict:
    """Train the model once per run; the weights go to the run directory so resume reuses them."""
    from searchlab.training.trainer import TrainConfig, train_classifier

    key = {"model": cfg.model, "data": cfg.data, "image_size": cfg.image_size, "test_size": cfg.test_size,
           "train_size": cfg.train_size, "val_size": cfg.val_size, "epochs": cfg.pretrain_epochs, "lr": cfg.lr,
           "batch_size": cfg.batch_size, "seed": ctx.seed, "split": _split_digest(train, val)}
    weights = meta = None
    if ctx.run_dir is not None:
        weights, meta = Path(ctx.run_dir) / "pretrained.safetensors", Path(ctx.run_dir) / "pretrained.json"
        if weights.is_file() and meta.is_file():
            info = io.read_json(meta, "pretraining record", "delete it and pretrained.safetensors to pretrain again")
            if isinstance(info, dict) and info.get("key") == key:
                io.load_into(model, weights, "pretrained weights")
                return info
    tcfg = TrainConfig.preset("classifier", epochs=cfg.pretrain_epochs, lr=cfg.lr, batch_size=cfg.batch_size)
    with progress.step(f"pretraining {cfg.model} for {cfg.pretrain_epochs:g} epochs on {len(train):,} images"):
        stats = train_classifier(model, train, tcfg, seed=ctx.seed, device=ctx.device, verbose=ctx.verbose)
    model.cpu().eval()
    info = {"key": key, "seconds": stats.seconds, "steps": stats.steps, "final_loss": stats.final_loss}
    if weights is not None:
        Path(ctx.run_dir).mkdir(parents=True, exist_ok=True)
        io.save_safetensors(model.state_dict(), weights)
        io.write_json(meta, info)
    return info


# the image shape and classes of the data sets whose format fixes them: a size target is checked on them
# before any image is read
KNOWN_SHAPES = {"cifar10": (3, 32, 10), "mnist": (1, 28, 10)}


def _check_target_early(cfg: PruneConfig) -> None:
    """Refuse a size target the layers cannot reach before the data is read, where the data's kind says
    its shape; other data sets are checked once read, still before any training."""
    from searchlab.training.data import parse_data_spec

    kind, _ = parse_data_spec(cfg.data)
    if cfg.target is None or kind not in KNOWN_SHAPES:
        return
    channels, side, classes = KNOWN_SHAPES[kind]
    side = cfg.image_size or side
    model = build_model(cfg.model, model_kwargs(cfg.model, classes, channels, side)).eval()
    FilterMaskSpace(model, analyse(model, torch.zeros(1, channels, side, side), layers=cfg.layers or None)) \
        .set_target(cfg.target)


def make_space(cfg: PruneConfig, ctx: Context) -> FilterMaskSpace:
    """Load (or pretrain) the model, split the data and analyse which filters can go."""
    _check_target_early(cfg)
    train, val, test, num_classes = _splits(cfg)
    in_channels, image_size = int(train.x.shape[1]), int(train.x.shape[-1])
    kwargs = model_kwargs(cfg.model, num_classes, in_channels, image_size)
    torch.manual_seed(ctx.seed)
    model = build_model(cfg.model, kwargs).eval()
    input_shape = [1, in_channels, int(train.x.shape[-2]), image_size]
    # the analysis depends on the structure only: check the layers before spending time on training
    plan = analyse(model, torch.zeros(input_shape), layers=cfg.layers or None)
    FilterMaskSpace(model, plan).set_target(cfg.target)  # no prunable filters, or an unreachable target: said now
    if cfg.weights:
        io.load_into(model, cfg.weights)
        pretrained = {"weights": cfg.weights}
    elif cfg.pretrain_epochs > 0:
        pretrained = _pretrain(model, cfg, train, val, ctx)
    else:
        raise ConfigError("pass trained --weights PATH or --pretrain-epochs E (> 0) to train the model first")
    model = model.cpu().eval()
    space = FilterMaskSpace(model, plan)
    space.set_target(cfg.target)
    space.problem = PruneProblem(cfg, model, kwargs, train, val, test, input_shape, pretrained)  # type: ignore[attr-defined]
    return space
