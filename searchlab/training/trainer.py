# Just over 400 lines: the training loop, its batches and its failure isolation are one contract.
"""The one trainer every strategy shares: fast, deterministic on CPU, and safe to fail.

- Device `auto` (CUDA when present, else CPU; `cuda:N` honoured), mixed precision on CUDA (bf16 where
  supported, else fp16 with a gradient scaler), channels-last, optional `torch.compile`.
- Data: when a uint8 set fits on the device it stays there and batches are gathered and augmented on
  the device (random crop with padding, horizontal flip); otherwise a DataLoader over pinned memory
  feeds the same batches. All shuffling and augmentation draws from one seeded CPU `torch.Generator`,
  so a seed gives the same batches on every device and the same metrics twice on CPU.
- Limits per candidate: epochs (may be fractional), steps, seconds.
- Failure isolation: a non-finite loss raises `TrainingFailed`; `run_guarded` turns it, CUDA
  out-of-memory and any exception of the model into `Result(status="failed")` and frees memory.

Inputs are scaled from uint8 to [-1, 1] (`to_float`), the same in training and evaluation.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from searchlab.training.data import ImageTensors
from searchlab.errors import ConfigError, DataError, RunStoreError
from searchlab.protocols import Result
from searchlab.training.augment import paired_patches, random_crop, random_flip, random_rot90  # noqa: F401 - the trainer's API
from searchlab.io import resolve_device  # noqa: F401 - part of the trainer's API (callers pass device names)

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant", "step")
AUGMENTS = ("auto", "none", "flip", "crop", "crop_flip")


class TrainingFailed(Exception):
    """Training of one candidate cannot go on (non-finite loss, ...); the search goes on."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train one candidate. The defaults are the classifier preset (SGD + momentum + cosine)."""

    epochs: float = 1.0
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    max_seconds: float = 0.0
    max_steps: int = 0
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    augment: str = "auto"
    device_data: str = "auto"

    def __post_init__(self) -> None:
        # Lenient spellings: None = no limit, True/False = auto/no augmentation.
        for name in ("max_seconds", "max_steps", "grad_clip"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, 0)
        if isinstance(self.augment, bool):
            object.__setattr__(self, "augment", "auto" if self.augment else "none")
        checks = [
            (self.epochs > 0, f"epochs must be > 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (self.augment in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}"),
            (self.device_data in ("auto", "on", "off"), f"device_data must be auto, on or off, got {self.device_data!r}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.max_seconds >= 0, f"max_seconds must be >= 0 (0 = no limit), got {self.max_seconds}"),
            (self.max_steps >= 0, f"max_steps must be >= 0 (0 = no limit), got {self.max_steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @classmethod
    def preset(cls, task: str, **overrides: Any) -> "TrainConfig":
        """The papers' recipes: 'classifier' (SGD 0.05, momentum 0.9, wd 5e-4, cosine), 'sr' (Adam 1e-4,
        step decay, no weight decay), 'gan' (Adam 2e-4, betas 0.5/0.999, constant)."""
        presets = {
            "classifier": {},
            "sr": dict(optimizer="adam", lr=1e-4, weight_decay=0.0, schedule="step", batch_size=16, augment="none"),
            "gan": dict(optimizer="adam", lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0, schedule="constant",
                        batch_size=1, augment="none"),
        }
        if task not in presets:
            raise ConfigError(f"unknown training preset {task!r}; choose one of {', '.join(presets)}")
        return replace(cls(), **{**presets[task], **overrides})


@dataclass(frozen=True)
class TrainStats:
    """What one training did: epochs and steps completed, wall seconds, mean loss of the last epoch."""

    epochs: float
    steps: int
    seconds: float
    final_loss: float
    stopped_by: str = "epochs"


# --------------------------------------------------------------------------------------------------
# devices, precision, input conversion
# --------------------------------------------------------------------------------------------------

def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """bf16 on GPUs that support it, fp16 on older GPUs, None (fp32) on CPU or when disabled."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def to_float(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (the one input scaling training and evaluation share)."""
    out = x.float().mul_(2.0 / 255.0).sub_(1.0)
    return out.contiguous(memory_format=torch.channels_last) if channels_last and out.dim() == 4 else out


def free_memory() -> None:
    """Collect garbage and give cached CUDA blocks back after a candidate."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _augment_plan(augment: str, data: ImageTensors) -> tuple[int, bool]:
    """(crop padding, flip?) for an augment name; 'auto' = crop 4 + flip for colour images of side >= 32,
    nothing for grey ones (flipping digits changes them)."""
    if augment == "auto":
        colour = data.x.shape[1] == 3 and min(data.x.shape[-2:]) >= 32
        return (4, True) if colour else (0, False)
    pad = max(1, min(data.x.shape[-2:]) // 8)
    return {"none": (0, False), "flip": (0, True), "crop": (pad, False), "crop_flip": (pad, True)}[augment]


# --------------------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------------------

class EpochBatches:
    """Shuffled (image, label) batches of a labelled uint8 set, on `device`, augmented there.

    Resident mode keeps the whole set on the device and gathers batches by index; streamed mode
    (set too big for the device) reads the same index batches through a DataLoader with pinned memory.
    Both draw the permutation and augmentation from `gen`, so they yield the same batches.
    """

    def __init__(self, data: ImageTensors, batch_size: int, device: torch.device, gen: torch.Generator,
                 augment: str = "auto", resident: bool | None = None, channels_last: bool = False) -> None:
        if data.y is None:
            raise DataError("training a classifier needs labels; this data set has none")
        if len(data) == 0:
            raise DataError("the training set is empty; check --train-size / --val-fraction")
        self.n = len(data)
        self.batch_size = min(batch_size, self.n)
        # A last partial batch is dropped (a batch of one breaks BatchNorm) unless it is the only one.
        self.steps_per_epoch = max(1, self.n // self.batch_size)
        self.device, self.gen, self.channels_last = device, gen, channels_last
        self.pad, self.flip = _augment_plan(augment, data)
        self.resident = fits_on_device(data.x, device) if resident is None else resident
        if self.resident:
            self.x = data.x.to(device)
            self.y = data.y.to(device)
        else:  # batches are pinned one at a time by the DataLoader
            self.x, self.y = data.x, data.y

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(self.n, generator=self.gen)
        order = [perm[i * self.batch_size:(i + 1) * self.batch_size] for i in range(self.steps_per_epoch)]
        if self.resident:
            for idx in order:
                idx = idx.to(self.device, non_blocking=True)
                yield self.transform(self.x[idx]), self.y[idx]
        else:
            # batch_size=None: the sampler yields whole index batches, fetched in one indexing call each
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self.x, self.y), sampler=order,
                                                 batch_size=None, pin_memory=self.device.type == "cuda")
            for xb, yb in loader:
                xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
                yield self.transform(xb), yb

    def transform(self, xb: torch.Tensor) -> torch.Tensor:
        if self.pad:
            xb = random_crop(xb, self.pad, self.gen)
        if self.flip:
            xb = random_flip(xb, self.gen)
        return to_float(xb, self.channels_last)


def fits_on_device(x: torch.Tensor, device: torch.device, share: float = 0.25) -> bool:
    """True on CPU (the set is already in memory); on CUDA when it takes under `share` of free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return x.numel() * x.element_size() < share * free


# --------------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------------

def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise TrainingFailed("the model has no trainable parameters")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """Per-step LR factor: cosine to 0, constant, or x0.1 at 50% and 75% of the steps."""
    total = max(1, total_steps)
    if cfg.schedule == "cosine":
        factor = lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
    elif cfg.schedule == "step":
        factor = lambda s: 0.1 ** ((s >= total // 2) + (s >= (3 * total) // 4))  # noqa: E731
    else:
        factor = lambda s: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _progress(total: int, verbose: bool, desc: str):
    from tqdm import tqdm

    from searchlab import progress

    return tqdm(total=total, desc=desc, unit="step", disable=not (verbose or progress.bars()), leave=False,
                dynamic_ncols=True)


def fit(model: nn.Module, batches: Callable[[], Iterator[Any]], loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        cfg: TrainConfig, *, steps_per_epoch: int, seed: int, device: str | torch.device = "auto",
        verbose: bool = False, desc: str = "train") -> TrainStats:
    """Train `model` by minimising `loss_fn(model, batch)` over `batches()` (one call = one epoch's iterator).

    Handles the optimizer and schedule presets, AMP, channels-last, compile, gradient clipping, the
    epoch/step/second limits and non-finite losses (raises TrainingFailed). Dropout and weight init inside
    draw from torch's global generator, so training runs under `fork_rng` seeded with `seed`.
    """
    dev = resolve_device(device)
    total_steps = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    dtype = amp_dtype(dev, cfg.amp)
    model.to(dev)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    step_model = _compiled(model, cfg.compile)
    optimizer = make_optimizer(model.parameters(), cfg)
    schedule = make_schedule(optimizer, cfg, total_steps)
    scaler = torch.amp.GradScaler(dev.type) if dtype == torch.float16 else None
    check_every = 1 if dev.type == "cpu" else 25
    start = time.perf_counter()
    step, stopped_by, epoch_losses = 0, "epochs", []
    bar = _progress(total_steps, verbose, desc)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            while step < total_steps and stopped_by == "epochs":
                running = torch.zeros((), device=dev)
                seen = 0
                for batch in batches():
                    with autocast(dev, dtype):
                        loss = loss_fn(step_model, batch)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        if cfg.grad_clip:
                            scaler.unscale_(optimizer)
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        loss.backward()
                        if cfg.grad_clip:
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        optimizer.step()
                    schedule.step()
                    running += loss.detach().float()
                    step += 1
                    seen += 1
                    bar.update(1)
                    if step % check_every == 0 or step == total_steps:
                        _check_finite(running, step)
                    if step >= total_steps:
                        break
                    if cfg.max_seconds and time.perf_counter() - start > cfg.max_seconds:
                        stopped_by = "seconds"
                        break
                if seen:
                    _check_finite(running, step)
                    epoch_losses.append(float(running) / seen)
                    bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
            if stopped_by == "epochs" and total_steps < math.ceil(cfg.epochs * steps_per_epoch):
                stopped_by = "steps"
        finally:
            bar.close()
    model.eval()
    return TrainStats(epochs=step / steps_per_epoch, steps=step, seconds=time.perf_counter() - start,
                      final_loss=epoch_losses[-1] if epoch_losses else float("nan"), stopped_by=stopped_by)


def _check_finite(running: torch.Tensor, step: int) -> None:
    if not bool(torch.isfinite(running)):
        raise TrainingFailed(f"loss became non-finite (NaN or inf) by step {step}; lower the learning rate "
                             f"or set a gradient clip")


def _compiled(model: nn.Module, enabled: bool) -> nn.Module:
    if not enabled:
        return model
    try:
        return torch.compile(model)
    except Exception as exc:  # noqa: BLE001 - compile is an optional speed-up
        raise TrainingFailed(f"torch.compile failed ({type(exc).__name__}: {exc}); run without --compile") from None


def train_classifier(model: nn.Module, data: ImageTensors, cfg: TrainConfig, *, seed: int,
                     device: str | torch.device = "auto", verbose: bool = False) -> TrainStats:
    """Train a classifier with cross-entropy (optionally label-smoothed) on a labelled uint8 set."""
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    resident = {"auto": None, "on": True, "off": False}[cfg.device_data]
    source = EpochBatches(data, cfg.batch_size, dev, gen, cfg.augment, resident,
                          channels_last=cfg.channels_last)

    def loss_fn(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xb, yb = batch
        return F.cross_entropy(net(xb), yb, label_smoothing=cfg.label_smoothing)

    return fit(model, source.epoch, loss_fn, cfg, steps_per_epoch=source.steps_per_epoch, seed=seed,
               device=dev, verbose=verbose, desc="train")


@torch.no_grad()
def evaluate_classifier(model: nn.Module, data: ImageTensors, *, device: str | torch.device = "auto",
                        batch_size: int = 500, amp: bool = True, channels_last: bool = True) -> dict[str, float]:
    """Top-1 accuracy (fraction) and mean cross-entropy of `model` on a labelled uint8 set."""
    if data.y is None or len(data) == 0:
        raise DataError("evaluation needs a non-empty labelled set")
    dev = resolve_device(device)
    model.to(dev).eval()
    if channels_last:  # as `fit` leaves it; the weights' layout picks the convolution kernels
        model.to(memory_format=torch.channels_last)
    dtype = amp_dtype(dev, amp)
    correct, loss_sum = 0, 0.0
    x = data.x.to(dev) if fits_on_device(data.x, dev) else data.x
    y = data.y.to(dev)
    for start in range(0, len(data), batch_size):
        xb = to_float(x[start:start + batch_size].to(dev, non_blocking=True), channels_last)
        with autocast(dev, dtype):
            logits = model(xb)
        logits = logits.float()
        yb = y[start:start + batch_size]
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    n = len(data)
    if not math.isfinite(loss_sum):
        raise TrainingFailed("evaluation produced non-finite outputs (NaN or inf)")
    return {"accuracy": correct / n, "loss": loss_sum / n}


def first_line(text: str, limit: int) -> str:
    """The first line of a message, shortened at a word boundary to about `limit` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit)
    return line[:cut if cut > limit // 2 else limit].rstrip(" ,;:") + " ..."


def run_guarded(fn: Callable[[], Result], *, cost: dict[str, float] | None = None) -> Result:
    """Run one candidate's work; TrainingFailed, CUDA OOM or any model exception becomes a failed Result
    (memory freed, the search goes on). Errors the user must fix (bad data or config) still propagate."""
    error = None
    try:
        return fn()
    except (DataError, ConfigError, RunStoreError):
        raise
    except TrainingFailed as exc:
        error = str(exc)
    except torch.cuda.OutOfMemoryError as exc:
        error = f"CUDA out of memory: {first_line(str(exc), 200)}; use a smaller --batch-size"
    except Exception as exc:  # noqa: BLE001 - failure isolation is the point
        error = f"{type(exc).__name__}: {first_line(str(exc), 300)}".rstrip(": ")
    free_memory()
    return Result.failed(error, cost)
