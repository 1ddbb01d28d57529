"""Training throughput of the shared trainer against a plain PyTorch loop, measured in the same run.

Baseline: what a script without the trainer does: a Dataset that turns each uint8 image into float and
crops/flips it (as torchvision transforms would), a shuffling DataLoader, fp32, an SGD step per batch.
Trainer: `searchlab.training.trainer.train_classifier` on the same model, data, batch size and optimizer (on a
GPU with its uint8 data resident on the device, batched augmentation and AMP; channels-last on
every device). The trainer also runs with channels-last off, to show what the memory format gives.
All are timed over the same number of steps after a warm-up, alternating, best of `--repeats`.

    python bench/trainer_throughput.py                       # CIFAR-10 fixture, ResNet-20, CPU
    python bench/trainer_throughput.py --data cifar10:/tmp/cifar10 --images 10000 --model resnet20 --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from searchlab.training.data import ImageTensors, load_classification  # noqa: E402
from searchlab.training.trainer import TrainConfig, resolve_device, train_classifier  # noqa: E402
from searchlab.search_spaces.classifiers import build_classifier  # noqa: E402


class AugmentedImages(torch.utils.data.Dataset):
    """Per-image float conversion, 4-pixel-padded random crop and flip: the usual DataLoader pipeline."""

    def __init__(self, data: ImageTensors, augment: bool) -> None:
        self.x, self.y, self.augment = data.x, data.y, augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = self.x[i].float().div(127.5).sub(1.0)
        if self.augment:
            img = F.pad(img, (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            img = img[:, dy:dy + self.x.shape[2], dx:dx + self.x.shape[3]]
            if torch.rand(()) < 0.5:
                img = img.flip(2)
        return img, self.y[i]


def plain_loop(model, data: ImageTensors, *, steps: int, batch_size: int, device: torch.device, augment: bool,
               workers: int) -> float:
    """Images per second of a plain fp32 DataLoader loop over `steps` steps (after 2 warm-up steps)."""
    loader = torch.utils.data.DataLoader(AugmentedImages(data, augment), batch_size=batch_size, shuffle=True,
                                         drop_last=True, num_workers=workers, pin_memory=device.type == "cuda")
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    done, start = 0, None
    while done < steps + 2:
        for xb, yb in loader:
            if done == 2:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps + 2:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def trainer_loop(model, data: ImageTensors, *, steps: int, batch_size: int, device: torch.device, augment: bool,
                 compile: bool, channels_last: bool = True) -> float:
    """Images per second of the shared trainer over `steps` steps (a 2-step warm-up run first)."""
    # "crop_flip" pads by side // 8: 4 pixels for 32x32 images, as the baseline does
    cfg = TrainConfig(epochs=1000, batch_size=batch_size, lr=0.05, max_steps=2,
                      augment="crop_flip" if augment else "none", compile=compile, channels_last=channels_last)
    train_classifier(model, data, cfg, seed=0, device=device)  # warm-up (and compile)
    stats = train_classifier(model, data, replace(cfg, max_steps=steps), seed=1, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return stats.steps * batch_size / stats.seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"cifar10:{ROOT / 'tests' / 'data' / 'cifar10_mini'}")
    p.add_argument("--images", type=int, default=0, help="use the first N training images (0 = all)")
    p.add_argument("--model", default="resnet20", help="lenet5, vgg_small, resnet20, resnet56")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_classification(args.data).train
    if args.images:
        data = data.subset(range(min(args.images, len(data))))
    augment = not args.no_augment
    torch.manual_seed(0)
    model = build_classifier(args.model, num_classes=len(data.classes), in_channels=data.x.shape[1],
                             **({"image_size": data.x.shape[-1]} if args.model in ("lenet5", "vgg_small") else {}))
    base, ours, nchw = [], [], []
    for _ in range(args.repeats):
        base.append(plain_loop(model, data, steps=args.steps, batch_size=args.batch_size, device=device,
                               augment=augment, workers=args.workers))
        ours.append(trainer_loop(model, data, steps=args.steps, batch_size=args.batch_size, device=device,
                                 augment=augment, compile=args.compile))
        nchw.append(trainer_loop(model, data, steps=args.steps, batch_size=args.batch_size, device=device,
                                 augment=augment, compile=args.compile, channels_last=False))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"model {args.model}, {len(data)} images {tuple(data.x.shape[1:])}, batch {args.batch_size}, "
          f"{args.steps} steps, augment {'crop+flip' if augment else 'none'}, {name}")
    print(f"plain DataLoader loop (fp32):  {max(base):9.1f} images/s   (runs: {', '.join(f'{b:.1f}' for b in base)})")
    print(f"searchlab trainer:             {max(ours):9.1f} images/s   (runs: {', '.join(f'{o:.1f}' for o in ours)})")
    print(f"trainer, channels-last off:    {max(nchw):9.1f} images/s   (runs: {', '.join(f'{o:.1f}' for o in nchw)})")
    print(f"ratio trainer / plain: {max(ours) / max(base):.2f}x best of {args.repeats}, "
          f"{statistics.median(ours) / statistics.median(base):.2f}x of the medians; "
          f"channels-last on / off: {max(ours) / max(nchw):.2f}x best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
