"""The graph transformer and the assessor blended: two predictors that learn from different signals.

The graph transformer reads each cell on its own (its structure, after pretraining on every cell); the
assessor (semi-gcn) reads a cell through its neighbours in a graph of labelled and unlabelled cells.
Their errors are partly independent, so a weighted mean of their standardised predictions ranks
better than either (docs/benchmarks.md, "Predictors: graph transformer"). Each prediction is
standardised with the mean and spread of that member's predictions on a fixed set of reference
cells (the unlabelled cells of the fit, or its labelled cells when there are none), so a cell's blended
score does not depend on which other cells are predicted with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from searchlab.errors import ConfigError
from searchlab.predictors.base import Predictor, bend_into_unit_interval
from searchlab.predictors.configs import BlendConfig
from searchlab.predictors.features import Cells
from searchlab.predictors.graph_transformer import GraphTransformerPredictor
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
from searchlab.predictors.semi_gcn import SemiGCNConfig, SemiGCNPredictor

MEMBERS = (("gt", GraphTransformerPredictor, GraphTransformerConfig), ("gcn", SemiGCNPredictor, SemiGCNConfig))


class BlendPredictor(Predictor):
    """Weighted mean of the graph transformer's and the assessor's standardised predictions."""

    kind = "blend"
    Config = BlendConfig
    spaces = ("nasbench101", "nasbench201")

    def __init__(self, config: BlendConfig | None = None, *, seed: int = 0, device: str = "auto") -> None:
        super().__init__(config, seed=seed, device=device)
        fields = dataclasses.asdict(self.config)
        self.members = {name: cls(cfg(**{f.name: fields[f.name] for f in dataclasses.fields(cfg)}), seed=seed,
                                  device=device) for name, cls, cfg in MEMBERS}
        self.stats = torch.zeros(len(MEMBERS), 2)  # per member (mean, std) of its predictions on the reference cells
        self.calibration = torch.tensor([1.0, 0.0])
        self.target_range: torch.Tensor | None = None

    def fit(self, cells: Cells, y, unlabeled: Cells | None = None) -> "BlendPredictor":
        """Fit both members on the same cells (the assessor also on the unlabelled ones)."""
        for member in self.members.values():
            member.fit(cells, y, unlabeled)
        reference = unlabeled if unlabeled is not None and len(unlabeled) > 1 else cells
        for m, member in enumerate(self.members.values()):
            p = member.predict(reference).astype(np.float64)
            self.stats[m] = torch.tensor([p.mean(), p.std() or 1.0])
        self.meta["members"] = {name: member.meta for name, member in self.members.items()}
        self.meta.setdefault("train_size", len(cells))
        self.calibrate(self._blend(cells), torch.as_tensor(np.asarray(y, dtype=np.float64)))
        return self

    def _blend(self, cells: Cells, progress: bool = False) -> np.ndarray:
        w = self.config.blend_weight
        z = [(member.predict(cells, progress=progress).astype(np.float64) - float(self.stats[m, 0]))
             / float(self.stats[m, 1])
             for m, member in enumerate(self.members.values())]
        return w * z[0] + (1 - w) * z[1]

    def predict(self, cells: Cells, progress: bool = False) -> np.ndarray:
        """Scores in the target's units (a monotone map of the blended standardised score)."""
        if not self.stats.any():
            raise ConfigError("the blend is not trained; call fit() or load a trained one")
        slope, intercept = (float(v) for v in self.calibration)
        values = self._blend(cells, progress) * slope + intercept
        if self.target_range is not None:
            values = bend_into_unit_interval(values, *(float(v) for v in self.target_range))
        return values.astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        if not self.stats.any():
            raise ConfigError("cannot save an untrained blend")
        t = {"stats": self.stats.double(), "calibration": self.calibration.double()}
        if self.target_range is not None:
            t["target_range"] = self.target_range.double()
        for name, member in self.members.items():
            t.update({f"{name}.{k}": v for k, v in member.tensors().items()})
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        metas = self.meta.get("members", {})
        for name, member in self.members.items():
            member.meta = dict(metas.get(name, {})) if isinstance(metas, dict) else {}
            member.load_tensors({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")})
        self.stats = tensors["stats"].float()
        self.calibration = tensors["calibration"].double()
        self.target_range = tensors["target_range"].double() if "target_range" in tensors else None
        if self.stats.shape != (len(MEMBERS), 2) or self.calibration.shape != (2,):
            raise ValueError("the blend's statistics or calibration have the wrong shape")
