"""After a cyclegan run: prune the best pair physically, fine-tune it, and write the generators, their
masks, a report and an image grid (input | full | pruned, rows and columns labelled) to RUN/cyclegan/."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from searchlab.evolvers.gan_coevolution.finetune import finetune
from searchlab import io
from searchlab.io import resolve_device
from searchlab.protocols import Context
from searchlab.search_spaces import cyclegan as cg


def fidelity(space: cg.CycleganSpace, side: str, gen: cg.ResnetGenerator, device: torch.device) -> dict:
    """PSNR / MSE of `gen` against the full generator on the test images (train images when none)."""
    imgs = space.images[f"test{side}"]
    if len(imgs) == 0:
        imgs = space.images[f"train{side}"]
    return cg.compare_outputs(space.generators[side], gen, imgs, device)


GRID_COLUMNS = ("input", "full generator", "pruned generator")


def grid_figure(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], labels: list[str]):
    """One row per image (its label on the left), one column per network (its name on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(6.6, 2.0 * len(rows) + 0.4), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c, image in enumerate(row):
            ax = axes[r][c]
            ax.imshow(cg.to_uint8(image.detach().cpu()).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(GRID_COLUMNS[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def save_grid(path: Path, rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], labels: list[str]) -> None:
    """A PNG with one labelled row per image: input | full generator | pruned generator."""
    import matplotlib.pyplot as plt

    fig = grid_figure(rows, labels)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def best_pair(space: cg.CycleganSpace, best_trial: dict, run: Any = None) -> dict[str, str]:
    """The pair to keep: the co-evolution's final best masks (from the run's last strategy snapshot).

    Fitness values of different sides and rounds are not comparable (the cycle term joins after the
    first round), so the single best-scoring trial is only the fallback, with its partner (or the
    full mask) for the other generator.
    """
    if run is not None:  # the run's read-only view (searchlab.store.run_view.RunView)
        state = run.strategy_state()
        masks = state.get("best_masks") if isinstance(state, dict) else None
        if isinstance(masks, dict) and masks:
            pair = {s: space.validate({"side": s, "mask": m, "partner": None})["mask"] for s, m in masks.items()}
            for s in space.sides:
                pair.setdefault(s, cg.full_mask(space.generators[s]))
            return pair
    g = space.validate(best_trial["genome"])
    pair = {g["side"]: g["mask"]}
    other = space.other(g["side"])
    if other is not None:
        pair[other] = g["partner"] if g["partner"] is not None else cg.full_mask(space.generators[other])
    return pair


def finalize(space: cg.CycleganSpace, evaluator: Any, best_trial: dict, ctx: Context, *,
             config: cg.CycleganConfig | None = None) -> dict:
    """Prune the best pair physically, fine-tune it, and write generators, report and grid to the run."""
    cfg = config or space.config
    steps = cfg.finetune_steps if cfg else 0
    dev = resolve_device(ctx.device)
    out_dir = Path(ctx.run_dir or ".") / "cyclegan"
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = best_pair(space, best_trial, ctx.run)
    small = {s: cg.prune(space.generators[s].to(dev), m) for s, m in pair.items()}
    report: dict = {"trial": best_trial.get("id"), "masks": pair, "sides": {}}
    for s in pair:
        full_desc = space.full_description(s)
        desc = cg.describe_generator(small[s], space.flops_size)
        report["sides"][s] = {"full": full_desc, "pruned": desc,
                              "param_ratio": full_desc["params"] / desc["params"],
                              "flops_ratio": full_desc["flops"] / desc["flops"],
                              "fidelity_before": fidelity(space, s, small[s], dev)}
    if steps:
        from searchlab.training.trainer import TrainingFailed

        saved = {s: copy.deepcopy(g.state_dict()) for s, g in small.items()}
        try:
            report["finetune"] = finetune(space, small, steps=steps, lr=cfg.finetune_lr, batch_size=cfg.batch_size,
                                          seed=ctx.seed, device=dev, progress=True)
        except TrainingFailed as exc:  # keep the searched weights; say why in the report
            report["finetune"] = {"failed": str(exc)}
            for s, g in small.items():
                g.load_state_dict(saved[s])
        for s in pair:
            report["sides"][s]["fidelity_after"] = fidelity(space, s, small[s], dev)
    rows, labels = [], []
    for s in pair:
        io.save_torch({k: v.detach().cpu() for k, v in small[s].state_dict().items()}, out_dir / f"pruned_G_{s}.pth")
        split = "test" if len(space.images[f"test{s}"]) else "train"
        x = cg.to_unit(space.images[f"{split}{s}"][:4]).to(dev)
        with torch.no_grad():
            for i in range(len(x)):
                xi = x[i:i + 1]
                rows.append((xi[0], space.generators[s].to(dev)(xi)[0], small[s](xi)[0]))
                labels.append(f"G_{s}: {split}{s} image {i + 1}")
    io.write_json(out_dir / "masks.json", pair, indent=1)
    io.write_json(out_dir / "report.json", report, default=float)
    save_grid(out_dir / "grid.png", rows, labels)
    summary = {"dir": str(out_dir)}
    for s, r in report["sides"].items():
        after = r.get("fidelity_after", r["fidelity_before"])
        summary[f"G_{s}"] = (f"{r['full']['params']:,} -> {r['pruned']['params']:,} params "
                             f"({r['param_ratio']:.2f}x), {r['pruned']['size_mb']:.2f} MB, "
                             f"{r['flops_ratio']:.2f}x fewer FLOPs; PSNR vs full "
                             f"{r['fidelity_before']['psnr']:.2f} dB -> {after['psnr']:.2f} dB")
    return summary
