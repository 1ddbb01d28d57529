"""ReNAS (Xu et al., CVPR 2021): a small CNN over the 19x7x7 feature tensor, trained to rank.

The loss is the pairwise logistic ranking loss over all ordered pairs of a batch,
mean of log(1 + exp(-(s_i - s_j) * sign(y_i - y_j))), so only the order of the targets matters.
Two training-only additions (both options, on by default) lift Kendall tau at 424 labels from
about 0.60 to 0.64-0.65 on the bundled table: every batch is shown in fresh random topological
vertex orders (the same networks, so the same labels), and dropout before the last two fully
connected layers. Neither changes the network that is saved or how it predicts. One option changes
only prediction: `renas_orders` averages each cell's score over fixed re-orderings of its vertices.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from searchlab.predictors.base import Predictor, bend_into_unit_interval, native_bfloat16, seeded_init, seeded_torch
from searchlab.predictors.configs import ReNASConfig
from searchlab.predictors.features import (N_CHANNELS, MAX_VERTICES, Cells, encoding, feature_tensor,
                                          fixed_topological_orders, random_topological_orders, reorder_features)
from searchlab.predictors.table import costs_of
from searchlab.errors import ConfigError


class ReNASNet(nn.Module):
    """Conv(C->2C)+BN+ReLU, Conv(2C->128)+BN+ReLU, flatten, FC 128*V*V->120->84->1 (NAS-Bench-101:
    C = 19 channels, V = 7 vertices; 38 is twice the channels, as in the paper)."""

    def __init__(self, dropout: float = 0.0, channels: int = N_CHANNELS, vertices: int = MAX_VERTICES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU(),
            nn.Conv2d(2 * channels, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * vertices * vertices, 120), nn.ReLU(),
                                  nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 1))
        self.dropout = dropout  # training only, and weightless: saved predictors load whatever it was

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        for layer in self.head:
            h = layer(h)
            if isinstance(layer, nn.ReLU):  # after the first two fully connected layers
                h = nn.functional.dropout(h, self.dropout, self.training)
        return h.squeeze(-1)


class _FlattenChannelsLast(nn.Module):
    """(N, C, H, W) stored channels-last -> (N, H*W*C) without copying."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(len(x), -1)


def pairwise_ranking_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs with different targets of log(1 + exp(-(s_i - s_j) sign(y_i - y_j)))."""
    sign = torch.sign(y[:, None] - y[None, :])
    diff = scores[:, None] - scores[None, :]
    mask = sign != 0
    if not bool(mask.any()):
        return scores.sum() * 0.0
    return nn.functional.softplus(-diff[mask] * sign[mask]).mean()


class ReNASPredictor(Predictor):
    """Ranks cells from their ReNAS tensor (NAS-Bench-101: 19x7x7), inputs standardised per channel.

    The tensor's size comes from the cells' encoding (`Cells.space`); the space is saved with the
    predictor, and cells of another space are refused."""

    kind = "renas"
    Config = ReNASConfig
    spaces = ("nasbench101", "nasbench201")  # whose encodings it reads

    def __init__(self, config: ReNASConfig | None = None, *, seed: int = 0, device: str = "auto") -> None:
        super().__init__(config, seed=seed, device=device)
        self.net: ReNASNet | None = None
        self.mean = torch.zeros(N_CHANNELS)
        self.std = torch.ones(N_CHANNELS)
        self.calibration = torch.tensor([1.0, 0.0])  # prediction = slope * score + intercept
        self.target_range: torch.Tensor | None = None  # [lo, hi] of training targets that are fractions
        self.space = "nasbench101"

    def _encode(self, cells: Cells, costs: tuple[np.ndarray, np.ndarray] | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The standardised feature tensors (N, C, V, V), stored channels-last on the device.

        (A * v - mean) / std is computed as A * (v / std) - mean / std in (N, 7, 7, 19) order, so
        the tensor is born in the layout the convolutions want, with no float64 intermediate.
        """
        flops, params = costs if costs is not None else costs_of(cells)
        per_vertex = torch.cat([torch.from_numpy(cells.ops.astype(np.float32))[:, :, None],
                                torch.from_numpy(flops).transpose(1, 2), torch.from_numpy(params).transpose(1, 2)],
                               dim=2).to(self.device)  # (N, V vertices, C)
        adjacency = torch.from_numpy(cells.adjacency).to(self.device, torch.float32)
        mean, std = self.mean.to(self.device), self.std.to(self.device)
        x = adjacency[:, :, :, None] * (per_vertex / std)[:, None, :, :] - mean / std
        return x.to(dtype).permute(0, 3, 1, 2)

    def fit(self, cells: Cells, y, unlabeled: Cells | None = None) -> "ReNASPredictor":
        """Train on labelled cells (the ranker uses no unlabelled cells)."""
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        if len(cells) < 2 or len(y) != len(cells):
            raise ConfigError(f"ReNAS needs at least 2 labelled cells with one target each, got "
                              f"{len(cells)} cells and {len(y)} targets")
        self.space = cells.space
        enc = encoding(cells.space)
        costs = costs_of(cells)
        raw = torch.from_numpy(feature_tensor(cells, costs))
        self.mean = raw.mean(dim=(0, 2, 3))
        self.std = raw.std(dim=(0, 2, 3)).clamp_min(1e-6)
        net = seeded_init(self.seed, lambda: ReNASNet(self.config.renas_dropout, enc.channels,
                                                      enc.vertices)).to(self.device)
        return self._fit_from(net, cells, y, costs, self.config.renas_epochs)

    fine_tunes = True

    def fine_tune(self, start: "ReNASPredictor", cells: Cells, y, epochs: int) -> "ReNASPredictor":
        """Train a copy of `start`'s network on (cells, y) for `epochs` epochs, on `start`'s input
        standardisation (the scale its weights learnt); the learning rate and averaging as in `fit`."""
        if start.net is None or start.space != cells.space:
            raise ConfigError("fine_tune needs a ReNAS predictor fitted on cells of the same space")
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        if len(cells) < 2 or len(y) != len(cells):
            raise ConfigError(f"ReNAS needs at least 2 labelled cells with one target each, got "
                              f"{len(cells)} cells and {len(y)} targets")
        self.space, self.mean, self.std = cells.space, start.mean.clone(), start.std.clone()
        net = copy.deepcopy(start.net).to(self.device)
        return self._fit_from(net, cells, y, costs_of(cells), epochs)

    def _fit_from(self, net: ReNASNet, cells: Cells, y: torch.Tensor, costs, epochs: int) -> "ReNASPredictor":
        x = self._encode(cells, costs)
        y = y.to(self.device)
        with seeded_torch(self.seed, self.device):  # dropout draws from it
            net = self._train(net, x, y, cells, epochs)
        self.net = net.eval()
        self.calibration, self.target_range = torch.tensor([1.0, 0.0]), None  # raw scores to calibrate on
        self.calibrate(self.predict(cells).astype(np.float64), y)
        self.meta.setdefault("train_size", len(cells))
        self.meta["space"] = self.space
        return self

    def _train(self, net: ReNASNet, x: torch.Tensor, y: torch.Tensor, cells: Cells, epochs: int) -> ReNASNet:
        """Adam on the pairwise ranking loss; with augmentation every batch is seen in fresh random
        topological vertex orders, so the position-sensitive tensor stops memorising one order.

        Returns the mean of the weights after each epoch from `renas_average_from` of training on
        (stochastic weight averaging), with batch-norm statistics recomputed for those weights: the
        held-out ranking stops improving early while the training ranking keeps fitting label noise,
        and the mean of the later networks generalises better than any one of them."""
        from torch.optim.swa_utils import AveragedModel, update_bn
        opt_ = torch.optim.Adam(net.parameters(), lr=self.config.renas_lr)
        gen = torch.Generator().manual_seed(self.seed)
        orders_rng = np.random.default_rng(self.seed)
        bs = self.config.renas_batch or len(cells)
        average_from = min(epochs, max(1, round(self.config.renas_average_from * epochs)))
        averaged = AveragedModel(net) if average_from < epochs else None
        net.train()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(cells), generator=gen) if bs < len(cells) else torch.arange(len(cells))
            for start in range(0, len(cells), bs):
                idx = order[start:start + bs].to(self.device)
                if len(idx) < 2:
                    continue
                xb = x[idx]
                if self.config.renas_augment:
                    xb = reorder_features(xb, random_topological_orders(cells.take(idx.cpu().numpy()), orders_rng))
                loss = pairwise_ranking_loss(net(xb), y[idx])
                opt_.zero_grad(set_to_none=True)
                loss.backward()
                opt_.step()
            if averaged is not None and epoch >= average_from:
                averaged.update_parameters(net)
        if averaged is None:
            return net
        update_bn([x[start:start + 1024] for start in range(0, len(cells), 1024)], averaged.module)
        return averaged.module

    def _inference_net(self) -> nn.Module:
        """The trained network for inference: BatchNorm folded into the convolutions, in-place
        ReLUs, and the first fully connected layer's columns permuted to read the channels-last
        feature map as it lies in memory (a flatten of channels-last data would copy it)."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        f, head = self.net.features, self.net.head
        fc1 = nn.Linear(head[1].in_features, head[1].out_features)
        channels = f[3].out_channels
        v = encoding(self.space).vertices
        fc1.weight.data = head[1].weight.detach().view(fc1.out_features, channels, v, v).permute(0, 2, 3, 1) \
            .reshape(fc1.out_features, -1).clone()
        fc1.bias.data = head[1].bias.detach().clone()
        return nn.Sequential(fuse_conv_bn_eval(f[0], f[1]), nn.ReLU(inplace=True),
                             fuse_conv_bn_eval(f[3], f[4]), nn.ReLU(inplace=True),
                             _FlattenChannelsLast(), fc1, nn.ReLU(inplace=True),
                             copy.deepcopy(head[3]), nn.ReLU(inplace=True), copy.deepcopy(head[5])).eval()

    @torch.inference_mode()
    def predict(self, cells: Cells, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Scores in the target's units. The network runs in bfloat16 where the device computes it
        natively (about 2.3x faster on such a CPU; the ranking barely moves, see docs/predictors.md)
        unless `exact` is set; the encoding, standardisation and calibration stay in float32."""
        if self.net is None:
            raise ConfigError("the ReNAS predictor is not trained; call fit() or load a trained one")
        check_space(self, cells)
        dtype = torch.float32 if self.exact or not native_bfloat16(self.device) else torch.bfloat16
        net = self._inference_net().to(self.device, dtype)
        out = np.empty(len(cells), np.float32)
        flops, params = costs_of(cells)  # once: the on-disk cache when these are table rows
        # small CPU batches keep the feature maps in cache (1,024: 8.9 s for the table, 16,384: 12 s)
        batch_size = batch_size or (16384 if self.device.type == "cuda" else 1024)
        starts = range(0, len(cells), batch_size)
        if progress and len(starts) > 1:
            from searchlab import progress as progress_lines
            starts = progress_lines.bar(starts, desc=f"predicting {len(cells):,} cells", unit="batch", show=True)
        for start in starts:
            part = slice(start, min(start + batch_size, len(cells)))
            batch = Cells(cells.adjacency[part], cells.ops[part], space=cells.space)
            x = self._encode(batch, (flops[part], params[part]), dtype)
            scores = net(x).squeeze(-1).float()
            if self.config.renas_orders > 1:  # the same cells in other vertex orders
                for orders in fixed_topological_orders(batch, np.arange(1, self.config.renas_orders)):
                    scores += net(reorder_features(x, orders)).squeeze(-1).float()
            out[part] = (scores / self.config.renas_orders).cpu().numpy()
        slope, intercept = (float(v) for v in self.calibration)
        values = out.astype(np.float64) * slope + intercept
        if self.target_range is not None:
            values = bend_into_unit_interval(values, *(float(v) for v in self.target_range))
        return values.astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        if self.net is None:
            raise ConfigError("cannot save an untrained ReNAS predictor")
        t = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        t["input_mean"], t["input_std"] = self.mean, self.std
        t["calibration"] = self.calibration.double()
        if self.target_range is not None:
            t["target_range"] = self.target_range.double()
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.space = str(self.meta.get("space", "nasbench101"))
        enc = encoding(self.space)
        net = ReNASNet(channels=enc.channels, vertices=enc.vertices)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        self.net = net.to(self.device).eval()
        self.mean, self.std = tensors["input_mean"].float(), tensors["input_std"].float()
        self.calibration = tensors["calibration"].double()
        self.target_range = tensors["target_range"].double() if "target_range" in tensors else None
        if self.target_range is not None and self.target_range.shape != (2,):
            raise ValueError("the target range has the wrong shape")
        if self.mean.shape != (enc.channels,) or self.std.shape != (enc.channels,) or self.calibration.shape != (2,):
            raise ValueError("input statistics or calibration have the wrong shape")


def check_space(predictor, cells: Cells) -> None:
    """Refuse cells of another space than the predictor was trained on, in one plain line."""
    if cells.space != predictor.space:
        raise ConfigError(f"this {predictor.kind} predictor was trained on {predictor.space} cells and cannot "
                          f"predict {cells.space} cells; train one with --space {cells.space}")
