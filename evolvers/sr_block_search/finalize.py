"""After an sr run: train the best genome for --final-epochs, score it and bicubic on every --eval set,
and write the side-by-side picture, the exported model and a summary to the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from searchlab.evolvers.sr_block_search.evaluator import SRProxyEvaluator
from searchlab import io
from searchlab.training.image_metrics import psnr
from searchlab.io import resolve_device
from searchlab.protocols import Context
from searchlab.search_spaces.sr_blocks import SRBlockSpace
from searchlab.search_spaces.sr_blocks.export import export_model
from searchlab.search_spaces.sr_blocks.images import load_pairs, score_images, super_resolve, upscale_bicubic


def side_by_side(path: Path, bicubic: torch.Tensor, searched: torch.Tensor, hr: torch.Tensor, *, crop: int = 120,
                 titles: tuple[str, str, str] = ("bicubic", "searched", "HR")) -> Path:
    """A PNG with the same crop of bicubic | searched | HR (the crop with the largest bicubic error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = hr.shape[-2:]
    c = min(crop, h, w)
    err = ((bicubic.float() - hr.float()) ** 2).mean(0)
    pooled = F.avg_pool2d(err[None, None], c, stride=max(1, c // 4))[0, 0]
    idx = int(pooled.argmax())
    top, left = (idx // pooled.shape[1]) * max(1, c // 4), (idx % pooled.shape[1]) * max(1, c // 4)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, img, title in zip(axes, (bicubic, searched, hr), titles):
        ax.imshow(img[:, top:top + c, left:left + c].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def finalize(space: SRBlockSpace, evaluator: SRProxyEvaluator, best_trial: dict, ctx: Context) -> dict:
    """Train the best genome for --final-epochs, score it and bicubic on every --eval set, save the
    side-by-side picture and the exported model in the run folder."""
    genome = space.validate(best_trial["genome"])
    device = resolve_device(ctx.device)
    net, stats = evaluator.train(genome, seed=ctx.seed, device=str(device), epochs=evaluator.config.final_epochs,
                                 desc="final training")
    run_dir = Path(ctx.run_dir) if ctx.run_dir else Path(".")
    run_dir.mkdir(parents=True, exist_ok=True)
    info = space.describe(genome)
    summary: dict[str, Any] = {"trial": best_trial["id"], "layout": info["layout"], "params": info["params"],
                               "mult_adds_G": round(info["mult_adds"] / 1e9, 3), "scale": space.scale,
                               "final_epochs": stats.epochs, "final_seconds": round(stats.seconds, 1), "sets": {}}
    picture_done = False
    for spec in evaluator.config.eval_sets:
        name, folder = spec.split(":", 1)
        _, lrs, hrs = load_pairs(folder, space.scale)
        searched = score_images(net, lrs, hrs, space.scale, device)
        bicubic = score_images(None, lrs, hrs, space.scale)
        summary["sets"][name] = {"images": len(hrs), "searched": searched, "bicubic": bicubic}
        if not picture_done:
            bic, sr = upscale_bicubic(lrs[0], space.scale), super_resolve(net, lrs[0], device)
            titles = (f"bicubic (whole image {float(psnr(bic, hrs[0], border=space.scale)):.2f} dB)",
                      f"searched (whole image {float(psnr(sr, hrs[0], border=space.scale)):.2f} dB)",
                      f"HR ({name}, first image)")
            side_by_side(run_dir / "sr_comparison.png", bic, sr, hrs[0], titles=titles)
            summary["picture"] = str(run_dir / "sr_comparison.png")
            picture_done = True
    summary["model"] = str(export_model(net.cpu(), genome, space, run_dir / "model"))
    io.write_json(run_dir / "sr_summary.json", summary, indent=1)
    return summary
