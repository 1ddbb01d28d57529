"""The `train` evaluator: score a candidate by really training the network its space builds.

Works for any space whose object has `build_network(genome, ...) -> nn.Module` (keywords it accepts
among `num_classes`, `in_channels`, `image_size` are filled from the data). Each candidate is built
with weights seeded by its trial seed, trained with the shared trainer on a seeded training split,
and scored on the held-out split: accuracy (primary), params and FLOPs (multiply-accumulates of one
image, counted by torch's FlopCounterMode), with cost in seconds, epochs and steps. A candidate whose
training fails (NaN loss, exception, CUDA out-of-memory) becomes a failed Result; the search goes on.

Example (CPU, reduced NAS-Bench-101 networks on 10,000 CIFAR-10 images):
    searchlab search nasbench101 --evaluator train --data cifar10:data/cifar-10-batches-py \
        --train-size 10000 --epochs 4 --stem-channels 16 --num-stacks 3 --modules-per-stack 1 \
        --max-evals 20 --run runs/nb101-train
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from searchlab import registry
from searchlab.training.data import ClassificationData, load_classification, parse_data_spec, split_holdout
from searchlab.errors import ConfigError, DataError
from searchlab.options import opt, parse_duration
from searchlab.protocols import Context, Result
from searchlab.training.trainer import (AUGMENTS, OPTIMIZERS, SCHEDULES, TrainConfig, evaluate_classifier, resolve_device,
                               run_guarded, train_classifier)


@dataclass(frozen=True)
class TrainEvaluatorConfig:
    """Training evaluator (train each candidate on real data)"""

    data: str = opt("", help="data set as KIND:PATH with KIND cifar10, mnist or imagefolder, "
                             "e.g. cifar10:data/cifar-10-batches-py (required)")
    epochs: float = opt(1.0, help="training epochs per candidate (fractions allowed, e.g. 0.5)")
    train_size: int = opt(0, help="train each candidate on this many images of the training split (0 = all)")
    val_fraction: float = opt(0.1, help="fraction of the training images held out to score candidates "
                                        "(0 = score on the official test split)")
    batch_size: int = opt(128, help="training batch size")
    optimizer: str = opt("sgd", help="optimizer", choices=list(OPTIMIZERS))
    lr: float = opt(0.05, help="peak learning rate")
    momentum: float = opt(0.9, help="SGD momentum")
    weight_decay: float = opt(5e-4, help="weight decay")
    schedule: str = opt("cosine", help="learning-rate schedule over the candidate's steps", choices=list(SCHEDULES))
    label_smoothing: float = opt(0.0, help="label smoothing of the cross-entropy loss")
    grad_clip: float = opt(0.0, help="clip the gradient norm to this value (0 = off)")
    augment: str = opt("auto", help="augmentation on the device: auto = random crop + flip for colour images, "
                                    "none for grey ones", choices=list(AUGMENTS))
    max_seconds_per_candidate: float = opt(0.0, help="stop a candidate's training after this long, e.g. 90s, 5m "
                                                     "(0 = no limit)", parse=parse_duration)
    max_steps: int = opt(0, help="stop a candidate's training after this many steps (0 = no limit)")
    amp: bool = opt(True, help="mixed precision on CUDA (bf16 where supported, else fp16)")
    channels_last: bool = opt(True, help="channels-last memory format (faster convolutions on CUDA and on CPU)")
    compile: bool = opt(False, help="torch.compile each candidate (pays off for long trainings on a GPU)")
    image_size: int = opt(0, help="resize images to this square size (0 = keep; ImageFolder sets of mixed sizes need it)")
    test_accuracy: bool = opt(False, help="also report accuracy on the official test split")

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("the train evaluator needs a data set: pass --data KIND:PATH, "
                              "e.g. --data cifar10:data/cifar-10-batches-py")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.train_size < 0:
            raise ConfigError(f"--train-size must be >= 0 (0 = all), got {self.train_size}")
        if self.max_seconds_per_candidate < 0:
            raise ConfigError("--max-seconds-per-candidate must be >= 0 (0 = no limit)")
        if self.image_size < 0:
            raise ConfigError(f"--image-size must be >= 0 (0 = keep), got {self.image_size}")
        self.train_config()  # range checks of the training options, as ConfigError

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, schedule=self.schedule,
                           label_smoothing=self.label_smoothing, grad_clip=self.grad_clip,
                           max_seconds=self.max_seconds_per_candidate, max_steps=self.max_steps, amp=self.amp,
                           channels_last=self.channels_last, compile=self.compile, augment=self.augment)


_DATA_CACHE: dict[tuple[str, int], ClassificationData] = {}


def _load(spec: str, image_size: int) -> ClassificationData:
    """Read a data set once per process (a search builds its evaluator once, tests build many)."""
    key = (spec, image_size)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_classification(spec, image_size=image_size or None)
    return _DATA_CACHE[key]


def count_flops(model: nn.Module, example: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass of one image (FlopCounterMode counts 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example)
    model.train(was_training)
    return float(counter.get_total_flops()) / 2.0


class TrainEvaluator:
    """Builds each candidate's network, trains it on the training split and scores it on the held-out split."""

    objectives = {"accuracy": "max", "params": "min", "flops": "min"}

    def __init__(self, space: Any, config: TrainEvaluatorConfig, ctx: Context | None = None) -> None:
        if not callable(getattr(space, "build_network", None)):
            raise ConfigError(f"space {getattr(space, 'name', type(space).__name__)!r} cannot build networks "
                              f"(no build_network method), so it cannot use --evaluator train")
        parse_data_spec(config.data)
        self.space, self.config, self.ctx = space, config, ctx or Context()
        resolve_device(self.ctx.device)  # a GPU asked for but missing stops the run here, not each trial
        data = _load(config.data, config.image_size)
        if config.val_fraction > 0:
            self.train_set, self.val_set = split_holdout(data.train, val_fraction=config.val_fraction,
                                                         train_size=config.train_size or None, seed=self.ctx.seed)
        else:
            if data.test is None:
                raise DataError(f"{config.data} has no official test split, so --val-fraction 0 leaves nothing "
                                f"to score on; use --val-fraction 0.1")
            self.train_set, _ = split_holdout(data.train, val_fraction=0.0, train_size=config.train_size or None,
                                              seed=self.ctx.seed)
            self.val_set = data.test
        self.test_set = data.test if config.test_accuracy else None
        if config.test_accuracy and data.test is None:
            raise DataError(f"{config.data} has no official test split; drop --test-accuracy")
        self.num_classes = data.num_classes
        self.in_channels = int(data.train.x.shape[1])
        self.image_size = int(data.train.x.shape[-1])
        self.train_cfg = config.train_config()

    def build(self, genome: Any, seed: int) -> nn.Module:
        """The candidate's network with weights initialised from `seed` (global RNG state untouched)."""
        offered = {"num_classes": self.num_classes, "in_channels": self.in_channels, "image_size": self.image_size}
        params = inspect.signature(self.space.build_network).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.space.build_network(genome, **kwargs)

    def evaluate(self, genome: Any, *, seed: int, device: str = "auto") -> Result:
        start = time.perf_counter()
        spent: dict[str, float] = {}

        def work() -> Result:
            model = self.build(genome, seed)
            params = float(sum(p.numel() for p in model.parameters() if p.requires_grad))
            example = torch.zeros(1, self.in_channels, self.image_size, self.image_size)
            flops = count_flops(model, example)
            stats = train_classifier(model, self.train_set, self.train_cfg, seed=seed, device=device,
                                     verbose=self.ctx.verbose)
            spent.update(epochs=stats.epochs, steps=float(stats.steps))
            metrics = evaluate_classifier(model, self.val_set, device=device, amp=self.config.amp,
                                          channels_last=self.config.channels_last)
            objectives = {"accuracy": metrics["accuracy"], "params": params, "flops": flops,
                          "val_loss": metrics["loss"], "train_loss": stats.final_loss}
            if self.test_set is not None:
                objectives["test_accuracy"] = evaluate_classifier(model, self.test_set, device=device,
                                                                  amp=self.config.amp,
                                                                  channels_last=self.config.channels_last)["accuracy"]
            return Result("ok", objectives, {"seconds": time.perf_counter() - start, "epochs": stats.epochs,
                                             "steps": float(stats.steps)})

        result = run_guarded(work)
        if not result.ok:
            result = Result.failed(result.error or "training failed",
                                   {"seconds": time.perf_counter() - start, **spent})
        return result


def _factory(space: Any, config: TrainEvaluatorConfig, ctx: Context) -> TrainEvaluator:
    return TrainEvaluator(space, config, ctx)


registry.register_evaluator(
    "train", factory=_factory, config=TrainEvaluatorConfig,
    help="train each candidate network on real data with the shared trainer and score held-out accuracy "
         "(any space with build_network)")
