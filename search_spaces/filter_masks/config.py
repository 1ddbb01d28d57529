"""The `prune` space's configuration: which model, which data, how candidates are scored and fine-tuned."""

from __future__ import annotations

import math
from dataclasses import dataclass

from searchlab.errors import ConfigError
from searchlab.options import opt
from searchlab.size_target import SizeTarget, parse_target, target_opt


@dataclass(frozen=True)
class PruneConfig:
    """Filter pruning: model, data, fitness"""

    model: str = opt("lenet5", help="built-in classifier (lenet5, vgg_small, resnet20, resnet56) or "
                                     "package.module:factory returning an nn.Module")
    weights: str = opt("", help="trained state dict of the model (.pt/.pth loaded weights-only, or .safetensors); "
                                "empty: pretrain for --pretrain-epochs, once per run")
    data: str = opt("", help="labelled data, KIND:PATH with KIND cifar10, mnist or imagefolder")
    image_size: int = opt(0, help="resize images to this side (0: keep the data's size)")
    test_size: int = opt(2000, help="images held out as the test set when the data has no test split")
    train_size: int = opt(0, help="use at most this many training images for (pre)training (0: all)")
    val_size: int = opt(1000, help="training images held out to score candidates (the fitness subset)")
    pretrain_epochs: float = opt(10.0, help="epochs to pretrain the model when no --weights are given")
    layers: list[str] = opt([], help="convolutions to prune, by module name (default: every convolution "
                                     "except the network's last layer), e.g. --layers conv1 conv2")
    max_flops: str = target_opt("FLOPs", "the unpruned network's")
    max_params: str = target_opt("parameters", "the unpruned network's")
    lam: float = opt(0.3, help="weight of the removed fraction in the fitness, in [0, 1); with --max-flops or "
                               "--max-params the fitness is the performance term alone (every candidate is at the budget)")
    fitness_metric: str = opt("accuracy", help="performance term of the fitness", choices=("accuracy", "loss"))
    size_measure: str = opt("filters", help="what 'removed' counts", choices=("filters", "flops"))
    candidate_steps: int = opt(0, help="fine-tune each candidate for this many SGD steps before scoring it (0: off)")
    bn_images: int = opt(-1, help="re-estimate each candidate's BatchNorm statistics on this many training images "
                                  "before scoring it (0: off; -1: 1024 with a size target, else off)")
    finetune_epochs: float = opt(10.0, help="epochs to fine-tune the best pruned network after the search")
    lr: float = opt(0.05, help="learning rate for pretraining (fine-tuning uses lr/5)")
    batch_size: int = opt(128, help="training batch size")

    @property
    def target(self) -> SizeTarget | None:
        """The hard size budget, if one was given."""
        return parse_target(self.max_flops, "flops") or parse_target(self.max_params, "params")

    @property
    def recalibration_images(self) -> int:
        if self.bn_images >= 0:
            return self.bn_images
        return 1024 if self.target is not None else 0

    def __post_init__(self) -> None:
        if parse_target(self.max_flops, "flops") and parse_target(self.max_params, "params"):
            raise ConfigError("give one size target, --max-flops or --max-params, not both")
        if self.bn_images < -1:
            raise ConfigError(f"--bn-images must be >= 0 (or -1 for the default), got {self.bn_images}")
        if not (0.0 <= self.lam < 1.0) or not math.isfinite(self.lam):
            raise ConfigError(f"--lam must be in [0, 1) (weight of the removed fraction), got {self.lam}")
        for name in ("test_size", "train_size", "candidate_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.val_size < 1:
            raise ConfigError(f"--val-size must be at least 1, got {self.val_size}")
        if self.pretrain_epochs < 0 or self.finetune_epochs < 0:
            raise ConfigError("--pretrain-epochs and --finetune-epochs must be >= 0")
        if not self.data:
            raise ConfigError("pass the data to prune on with --data KIND:PATH, e.g. --data mnist:data/mnist")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if not self.weights and self.pretrain_epochs <= 0:  # said now, not after the data has been read
            raise ConfigError("pass trained --weights PATH or --pretrain-epochs E (> 0) to train the model first")
