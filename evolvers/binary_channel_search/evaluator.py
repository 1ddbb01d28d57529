"""The `binary-train` evaluator: each candidate is trained briefly on the shared trainer and scored on a
held-out part of the training set, with its accounting (FLOPs + BOPs/64, size, params)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from searchlab.errors import ConfigError, DataError
from searchlab.options import opt
from searchlab.protocols import Context, Genome, Result
from searchlab.search_spaces.binary_widths import BinaryWidthSpace, account, build_network
from searchlab.engine.seeding import make_rng


@dataclass(frozen=True)
class BinaryTrainConfig:
    """short training of each candidate"""

    data: str = opt("", help="labelled images: cifar10:PATH, imagefolder:PATH (a tree or .tar.gz) or mnist:PATH")
    train_size: int = opt(5000, help="training images per candidate (0 = all but the held-out part)")
    val_fraction: float = opt(0.1, help="part of the training set held out to score candidates")
    val_size: int = opt(2000, help="held-out images used for scoring (0 = the whole held-out part)")
    epochs_per_candidate: int = opt(2, help="training epochs of each candidate")
    batch_size: int = opt(128, help="minibatch size")
    lr: float = opt(0.002, help="Adam learning rate (cosine schedule)")
    max_seconds_per_candidate: float = opt(0.0, help="stop a candidate's training after this many seconds (0 = no limit)")
    final_epochs: int = opt(10, help="epochs for training the best candidate at the end")
    final_train_size: int = opt(0, help="training images for the final model (0 = the same as --train-size)")
    compare_baselines: bool = opt(False, help="at the end also train the 1x binary and full-precision networks "
                                              "with the same budget and report the accuracy gap closed")

    def __post_init__(self) -> None:
        if self.train_size < 0 or self.final_train_size < 0 or self.val_size < 0:
            raise ConfigError("--train-size, --final-train-size and --val-size must be >= 0 (0 = all)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.epochs_per_candidate < 1 or self.final_epochs < 1:
            raise ConfigError("--epochs-per-candidate and --final-epochs must be at least 1")
        if self.batch_size < 1 or not self.lr > 0 or self.max_seconds_per_candidate < 0:
            raise ConfigError("--batch-size and --lr must be positive, --max-seconds-per-candidate >= 0")


class BinaryTrainEvaluator:
    """Trains a candidate briefly on the shared trainer; accuracy on the held-out split plus its accounting."""

    objectives = {"accuracy": "max", "flops_bops64": "min", "cost_ratio": "min", "size_bits": "min", "params": "min"}

    def __init__(self, space: BinaryWidthSpace, config: BinaryTrainConfig, ctx: Context) -> None:
        if not config.data:
            raise ConfigError("the binary search trains every candidate: pass --data, e.g. "
                              "--data imagefolder:data/cifar10_jpg.tar.gz or --data cifar10:data/cifar-10-batches-py")
        from searchlab.training.data import parse_data_spec

        parse_data_spec(config.data)  # a malformed spec fails now, before the run is created
        self.space = space
        self.config = config
        self.ctx = ctx
        self._splits: tuple | None = None

    def splits(self):
        """(train pool in a seeded order, val, test or None, num_classes), read once; fixed by the run seed."""
        if self._splits is None:
            from searchlab.training.data import load_classification, split_holdout

            data = load_classification(self.config.data, image_size=self.space.config.image_size)
            if data.train.x.shape[1] != 3:
                raise DataError(f"{self.config.data}: binary networks take 3-channel images, got "
                                f"{data.train.x.shape[1]} channels")
            pool, val = split_holdout(data.train, val_fraction=self.config.val_fraction, seed=self.ctx.seed)
            rng = make_rng(self.ctx.seed)
            pool = pool.subset(rng.permutation(len(pool)))
            if self.config.val_size and self.config.val_size < len(val):
                val = val.subset(np.sort(rng.permutation(len(val))[: self.config.val_size]))
            self._splits = (pool, val, data.test, data.num_classes)
        return self._splits

    def _train_cfg(self, epochs: int, max_seconds: float = 0.0):
        from searchlab.training.trainer import TrainConfig

        return TrainConfig(epochs=epochs, batch_size=self.config.batch_size, optimizer="adam", lr=self.config.lr,
                           weight_decay=0.0, schedule="cosine", max_seconds=max_seconds or None, augment=True)

    def train(self, ratios: list[float], *, binary: bool, epochs: int, seed: int, device: str,
              train_size: int = 0, max_seconds: float = 0.0, test: bool = False):
        """Train one network (ratios given directly) on the first `train_size` pool images -> (model, metrics)."""
        import torch
        from searchlab.training.trainer import evaluate_classifier, train_classifier

        pool, val, test_set, num_classes = self.splits()
        train = pool.subset(np.arange(min(train_size, len(pool)))) if train_size else pool
        cfg = self.space.config
        with torch.random.fork_rng(devices=[]):  # seeded weight init without touching global state
            torch.manual_seed(seed)
            model = build_network(self.space.net, ratios, binary=binary, num_classes=num_classes, act=cfg.act,
                                  width_scale=cfg.width_scale, image_size=cfg.image_size)
        stats = train_classifier(model, train, self._train_cfg(epochs, max_seconds), seed=seed, device=device,
                                 verbose=self.ctx.verbose)
        metrics = {"accuracy": float(evaluate_classifier(model, val, device=device)["accuracy"])}
        if test and test_set is not None:
            metrics["test_accuracy"] = float(evaluate_classifier(model, test_set, device=device)["accuracy"])
        metrics.update(account(model, cfg.image_size))
        metrics["train_images"] = float(len(train))
        metrics["epochs"] = float(stats.epochs)
        metrics["seconds"] = float(stats.seconds)
        return model, metrics

    def evaluate(self, genome: Genome, *, seed: int, device: str) -> Result:
        from searchlab.training.trainer import run_guarded

        ratios = self.space.ratios_of(genome)

        def work() -> Result:
            _, m = self.train(ratios, binary=True, epochs=self.config.epochs_per_candidate, seed=seed, device=device,
                              train_size=self.config.train_size, max_seconds=self.config.max_seconds_per_candidate)
            m["cost_ratio"] = m["flops_bops64"] / self.space.base_cost()
            objectives = {k: m[k] for k in self.objectives}
            return Result("ok", objectives, {"seconds": m["seconds"], "epochs": m["epochs"]})

        return run_guarded(work)
