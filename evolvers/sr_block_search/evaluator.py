"""The `sr-proxy` evaluator: train a candidate for a few epochs of random LR/HR crops (flips, rotations)
with L1 loss and Adam on the shared trainer, then PSNR on the Y channel of held-out training images."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from searchlab.errors import ConfigError, DataError
from searchlab.training.imresize import downscale
from searchlab.io import resolve_device
from searchlab.options import opt
from searchlab.protocols import Context, Genome, Result
from searchlab.search_spaces.sr_blocks import SRBlockSpace
from searchlab.search_spaces.sr_blocks.images import centre_crop, load_pairs, score_images


@dataclass(frozen=True)
class SRProxyConfig:
    """Proxy training and evaluation of SR candidates"""

    train: str = opt("", help="folder of HR training images (e.g. BSD68); the last --val-images are held out")
    eval_sets: list[str] = opt([], flag="--eval", help="benchmark sets for the final report, NAME:FOLDER, e.g. set5:data/Set5")
    epochs_per_candidate: float = opt(2.0, help="proxy training epochs per candidate")
    crops_per_image: int = opt(4, help="random crops per training image per epoch")
    patch: int = opt(24, help="LR training patch side (the HR patch is patch x scale)")
    batch_size: int = opt(16, help="training batch size")
    lr: float = opt(1e-3, help="Adam learning rate (cosine decay)")
    val_images: int = opt(4, help="training images held out to score candidates")
    val_crop: int = opt(96, help="HR centre crop of each validation image (0 = whole image)")
    final_epochs: float = opt(20.0, help="training epochs of the best network in the final step")

    def __post_init__(self) -> None:
        if self.epochs_per_candidate <= 0 or self.final_epochs <= 0:
            raise ConfigError("--epochs-per-candidate and --final-epochs must be > 0")
        if self.patch < 4 or self.batch_size < 1 or self.crops_per_image < 1:
            raise ConfigError("--patch must be >= 4, --batch-size and --crops-per-image >= 1")
        if self.val_images < 1:
            raise ConfigError(f"--val-images must be at least 1, got {self.val_images}")
        if self.val_crop < 0:
            raise ConfigError(f"--val-crop must be >= 0, got {self.val_crop}")
        for spec in self.eval_sets:
            if ":" not in spec:
                raise ConfigError(f"malformed --eval {spec!r}; write NAME:FOLDER, e.g. set5:data/Set5")


class SRProxyEvaluator:
    """Train a candidate briefly (L1, Adam) on random crops; fitness = validation PSNR (Y, shaved)."""

    objectives = {"psnr": "max", "params": "min", "mult_adds": "min"}

    def __init__(self, space: SRBlockSpace, config: SRProxyConfig, ctx: Context | None = None) -> None:
        if not config.train:
            raise ConfigError("--train is required: a folder of HR training images, e.g. --train data/BSD68")
        self.space, self.config = space, config
        self.verbose = bool(ctx.verbose) if ctx else False
        scale = space.scale
        names, lrs, hrs = load_pairs(config.train, scale)
        if len(hrs) <= config.val_images:
            raise DataError(f"{config.train} has {len(hrs)} images; need more than --val-images "
                            f"({config.val_images}) so some remain for training")
        hr_patch = config.patch * scale
        for name, hr in zip(names[: len(hrs) - config.val_images], hrs):
            if min(hr.shape[-2:]) < hr_patch:
                raise DataError(f"{Path(config.train) / name} ({hr.shape[-1]}x{hr.shape[-2]}) is smaller than the "
                                f"{hr_patch}px HR training crop; use a smaller --patch or remove the image")
        n_train = len(hrs) - config.val_images
        self.train_lr, self.train_hr = lrs[:n_train], hrs[:n_train]
        self.val_hr = [centre_crop(hr, config.val_crop, scale) for hr in hrs[n_train:]]
        self.val_lr = [downscale(hr, scale) for hr in self.val_hr]
        self.steps_per_epoch = max(1, math.ceil(n_train * config.crops_per_image / config.batch_size))

    def train_config(self, epochs: float):
        from searchlab.training.trainer import TrainConfig

        return TrainConfig.preset("sr", epochs=epochs, batch_size=self.config.batch_size, lr=self.config.lr,
                                  schedule="cosine")

    def train(self, genome: Genome, *, seed: int, device: str, epochs: float, desc: str = "train"):
        """Build the network with weights seeded by `seed` and train it; returns (net, TrainStats)."""
        from searchlab.training.augment import paired_patches
        from searchlab.training.trainer import fit, to_float

        dev = resolve_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.space.build(genome)
        gen = torch.Generator().manual_seed(int(seed))
        cfg = self.config

        def batches():
            for _ in range(self.steps_per_epoch):
                lo, hi = paired_patches(self.train_lr, self.train_hr, scale=self.space.scale, patch=cfg.patch,
                                        batch_size=cfg.batch_size, gen=gen, device=dev)
                yield to_float(lo), to_float(hi)

        def loss_fn(model, batch):
            lo, hi = batch
            return F.l1_loss(model(lo), hi)

        stats = fit(net, batches, loss_fn, self.train_config(epochs), steps_per_epoch=self.steps_per_epoch,
                    seed=seed, device=dev, verbose=self.verbose, desc=desc)
        return net, stats

    def evaluate(self, genome: Genome, *, seed: int, device: str = "auto") -> Result:
        from searchlab.training.trainer import TrainingFailed, run_guarded

        genome = self.space.validate(genome)
        info = self.space.describe(genome)
        start = time.perf_counter()

        def work() -> Result:
            net, stats = self.train(genome, seed=seed, device=device, epochs=self.config.epochs_per_candidate)
            scores = score_images(net, self.val_lr, self.val_hr, self.space.scale, resolve_device(device))
            if not math.isfinite(scores["psnr"]):
                raise TrainingFailed("validation PSNR is not finite")
            return Result("ok", {"psnr": scores["psnr"], "ssim": scores["ssim"], "params": float(info["params"]),
                                 "mult_adds": float(info["mult_adds"])},
                          {"seconds": time.perf_counter() - start, "epochs": stats.epochs})

        return run_guarded(work, cost={"seconds": time.perf_counter() - start})
