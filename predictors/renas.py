"""ReNAS (Xu et al., CVPR 2021): a small CNN over the 19x7x7 feature tensor, trained to rank.

The loss is the pairwise logistic ranking loss over all ordered pairs of a batch,
mean of log(1 + exp(-(s_i - s_j) * sign(y_i - y_j))), so only the order of the targets matters.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn

from predictors.base import Predictor, seeded_init
from predictors.configs import ReNASConfig
from predictors.features import N_CHANNELS, Cells, feature_tensor
from predictors.table import costs_of
from searchlab.errors import ConfigError


class ReNASNet(nn.Module):
    """Conv(19->38)+BN+ReLU, Conv(38->128)+BN+ReLU, flatten, FC 6272->120->84->1."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(N_CHANNELS, 38, 3, padding=1), nn.BatchNorm2d(38), nn.ReLU(),
            nn.Conv2d(38, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 49, 120), nn.ReLU(),
                                  nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


def pairwise_ranking_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs with different targets of log(1 + exp(-(s_i - s_j) sign(y_i - y_j)))."""
    sign = torch.sign(y[:, None] - y[None, :])
    diff = scores[:, None] - scores[None, :]
    mask = sign != 0
    if not bool(mask.any()):
        return scores.sum() * 0.0
    return nn.functional.softplus(-diff[mask] * sign[mask]).mean()


class ReNASPredictor(Predictor):
    """Ranks NAS-Bench-101 cells from their 19x7x7 ReNAS tensor (inputs standardised per channel)."""

    kind = "renas"
    Config = ReNASConfig

    def __init__(self, config: ReNASConfig | None = None, *, seed: int = 0, device: str = "auto") -> None:
        super().__init__(config, seed=seed, device=device)
        self.net: ReNASNet | None = None
        self.mean = torch.zeros(N_CHANNELS)
        self.std = torch.ones(N_CHANNELS)
        self.calibration = torch.tensor([1.0, 0.0])  # prediction = slope * score + intercept

    def _encode(self, cells: Cells) -> torch.Tensor:
        x = torch.from_numpy(feature_tensor(cells, costs_of(cells)))
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

    def fit(self, cells: Cells, y, unlabeled: Cells | None = None) -> "ReNASPredictor":
        """Train on labelled cells (the ranker uses no unlabelled cells)."""
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        if len(cells) < 2 or len(y) != len(cells):
            raise ConfigError(f"ReNAS needs at least 2 labelled cells with one target each, got "
                              f"{len(cells)} cells and {len(y)} targets")
        raw = torch.from_numpy(feature_tensor(cells, costs_of(cells)))
        self.mean = raw.mean(dim=(0, 2, 3))
        self.std = raw.std(dim=(0, 2, 3)).clamp_min(1e-6)
        x = ((raw - self.mean[None, :, None, None]) / self.std[None, :, None, None]).to(self.device)
        y = y.to(self.device)
        net = seeded_init(self.seed, ReNASNet).to(self.device)
        opt_ = torch.optim.Adam(net.parameters(), lr=self.config.renas_lr)
        gen = torch.Generator().manual_seed(self.seed)
        bs = self.config.renas_batch or len(cells)
        net.train()
        for _ in range(self.config.renas_epochs):
            order = torch.randperm(len(cells), generator=gen) if bs < len(cells) else torch.arange(len(cells))
            for start in range(0, len(cells), bs):
                idx = order[start:start + bs].to(self.device)
                if len(idx) < 2:
                    continue
                loss = pairwise_ranking_loss(net(x[idx]), y[idx])
                opt_.zero_grad(set_to_none=True)
                loss.backward()
                opt_.step()
        self.net = net.eval()
        # A least-squares line from scores to targets puts predictions in the target's units
        # (monotone, so the ranking is unchanged).
        self.calibration = torch.tensor([1.0, 0.0])
        scores = self.predict(cells).astype(np.float64)
        if np.ptp(scores) > 0:
            slope, intercept = np.polyfit(scores, y.cpu().numpy().astype(np.float64), 1)
            if slope > 0:
                self.calibration = torch.tensor([slope, intercept])
        self.meta.setdefault("train_size", len(cells))
        return self

    def _inference_net(self) -> nn.Module:
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        f = self.net.features
        fused = nn.Sequential(fuse_conv_bn_eval(f[0], f[1]), nn.ReLU(), fuse_conv_bn_eval(f[3], f[4]), nn.ReLU())
        return nn.Sequential(fused, self.net.head).eval()

    @torch.inference_mode()
    def predict(self, cells: Cells, batch_size: int = 16384, progress: bool = False) -> np.ndarray:
        if self.net is None:
            raise ConfigError("the ReNAS predictor is not trained; call fit() or load a trained one")
        net = self._inference_net().to(self.device)
        out = np.empty(len(cells), np.float32)
        starts = range(0, len(cells), batch_size)
        if progress and len(starts) > 1:
            from tqdm import tqdm
            starts = tqdm(starts, desc="predicting", unit="batch", leave=False)
        for start in starts:
            part = cells.take(np.arange(start, min(start + batch_size, len(cells))))
            x = self._encode(part).to(self.device).contiguous(memory_format=torch.channels_last)
            out[start:start + len(part)] = net(x).squeeze(-1).float().cpu().numpy()
        slope, intercept = (float(v) for v in self.calibration)
        return (out.astype(np.float64) * slope + intercept).astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        if self.net is None:
            raise ConfigError("cannot save an untrained ReNAS predictor")
        t = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        t["input_mean"], t["input_std"] = self.mean, self.std
        t["calibration"] = self.calibration.double()
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        net = ReNASNet()
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        self.net = net.to(self.device).eval()
        self.mean, self.std = tensors["input_mean"].float(), tensors["input_std"].float()
        self.calibration = tensors["calibration"].double()
        if self.mean.shape != (N_CHANNELS,) or self.std.shape != (N_CHANNELS,) or self.calibration.shape != (2,):
            raise ValueError("input statistics or calibration have the wrong shape")
