"""A graph transformer over the cell DAG, pretrained without labels, fine-tuned to rank.

Follows three papers:
- TNASP (Lu et al., NeurIPS 2021) and PINAT (Lu et al., AAAI 2023): each vertex is a token (its op
  embedding plus Laplacian eigenvectors of the cell graph as positional encoding), a few transformer
  encoder blocks, pooled, a 2-layer regressor; PINAT's best NAS-Bench-101 figures come from a pairwise
  ranking loss (binary cross-entropy on sigmoid(s_i - s_j), the same loss as ReNAS's
  `pairwise_ranking_loss`, which is what this module trains with).
- Graphormer-style structure in the attention (Ying et al., NeurIPS 2021): each head adds a learned
  bias per directed shortest-path distance between two vertices (forward, backward, unrelated), so
  the attention sees the edges and their direction, not only the positional encoding.
- GMAE-NAS (Jing et al., IJCAI 2022): label-free pretraining on every cell of the space by masking
  vertices' ops and reconstructing them; here combined with regressing the network's log FLOPs and
  log parameters, which the table gives for every cell (label-free, and the strongest single cheap
  signal of accuracy: the FLOPs column alone ranks at Kendall tau 0.30). Pretraining runs once on all
  cells of the table and is cached on disk (`searchlab.store.cache.cache_dir`); each fit starts from it.

Dense attention over the (N, V, V) padded cells is used instead of torch_geometric's sparse layers:
for 7-vertex graphs one batched matmul per head beats message passing over an edge list
(docs/predictors.md has the measurement). The vertex count and op codes are read from the cells.
The layers and the structure encodings are in `cell_transformer.py`; this module pretrains and fits.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time

import numpy as np
import torch
from torch import nn

from searchlab import io
from searchlab.predictors.base import Predictor, bend_into_unit_interval, one_cpu_thread, seeded_init, seeded_torch
from searchlab.predictors.cell_transformer import CellTransformer, Encoded, has_costs, head
from searchlab.predictors.features import Cells
from searchlab.predictors.graph_transformer_config import GraphTransformerConfig
from searchlab.predictors.renas import pairwise_ranking_loss
from searchlab.errors import ConfigError

_PRETRAIN_VERSION = 1


def _flip_signs(pe: torch.Tensor, gen: torch.Generator, n_pe: int) -> torch.Tensor:
    """Eigenvectors are defined up to sign: show each training cell a random choice (TNASP, PINAT).
    Columns after the first `n_pe` (per-vertex costs) are left alone."""
    signs = torch.randint(0, 2, (pe.shape[0], 1, pe.shape[2]), generator=gen).to(pe) * 2 - 1
    signs[:, :, n_pe:] = 1
    return pe * signs


# ---- pretraining (label-free, cached) ------------------------------------------------------------
def pretraining_corpus(cells: Cells):
    """(cells, (N, 2) label-free targets) of the whole space the cells come from, or None.

    The cells pretrain on every cell of their space's bundled table (`Cells.space`: 423,624 NAS-Bench-101
    cells, 15,625 NAS-Bench-201 ones) with the log FLOPs and log parameters of its network (the space's
    closed-form per-vertex costs, summed; for NAS-Bench-101 cached on disk); cells of another shape
    than their table's get no pretraining.
    """
    from searchlab.predictors.table import costs_of, load_predictor_table, table_vertex_costs

    table = load_predictor_table(space=cells.space)
    if cells.adjacency.shape[1:] != table.cells.adjacency.shape[1:]:
        return None
    flops, params = table_vertex_costs() if cells.space == "nasbench101" else costs_of(table.cells)
    costs = np.stack([np.log1p(flops.sum(axis=(1, 2), dtype=np.float64)),
                      np.log1p(params.sum(axis=(1, 2), dtype=np.float64))], axis=1)
    return Cells(table.cells.adjacency, table.cells.ops, space=cells.space), costs


def _fingerprint(cells: Cells, config: GraphTransformerConfig, n_ops: int) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(cells.adjacency).tobytes())
    h.update(np.ascontiguousarray(cells.ops).tobytes())
    h.update(repr((config.gt_dim, config.gt_layers, config.gt_heads, config.gt_pe, config.gt_costs,
                   config.gt_pretrain_epochs, config.gt_pretrain_cells, config.gt_mask, n_ops,
                   _PRETRAIN_VERSION)).encode())
    return h.hexdigest()[:16]


def pretrained_encoder(config: GraphTransformerConfig, corpus, n_ops: int, device: torch.device,
                       progress: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """The pretrained encoder's weights, from the on-disk cache or trained now (then cached).

    Returns (state dict, info) where info says whether it came from the cache and how long training took.
    """
    from safetensors.torch import load_file
    from searchlab.store.cache import cache_dir

    cells, costs = corpus
    if config.gt_pretrain_cells and config.gt_pretrain_cells < len(cells):
        rows = np.sort(np.random.default_rng(0).choice(len(cells), config.gt_pretrain_cells, replace=False))
        cells, costs = cells.take(rows), costs[rows]
    path = cache_dir() / f"graph_transformer_pretrained_{_fingerprint(cells, config, n_ops)}.safetensors"
    if path.is_file():
        try:
            state = load_file(str(path))
            meta = {"cached": True, "pretrain_cells": len(cells)}
            return {k: v.to(device) for k, v in state.items() if k != "pretrain_seconds"}, \
                meta | {"pretrain_seconds": float(state["pretrain_seconds"][0])}
        except Exception:  # noqa: BLE001 - a damaged cache file is retrained, never trusted
            pass
    start = time.perf_counter()
    if progress:
        from searchlab import progress as progress_lines
        with progress_lines.step(f"pretraining the graph transformer on {len(cells):,} cells without labels "
                                 f"(once; cached in {path.parent})"):
            state = _pretrain(config, cells, costs, n_ops, device, show=True)
    else:
        state = _pretrain(config, cells, costs, n_ops, device)
    seconds = time.perf_counter() - start
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        io.save_safetensors({**state, "pretrain_seconds": torch.tensor([seconds], dtype=torch.float64)}, path)
    except OSError:
        pass  # caching is an optimisation; an unwritable cache directory only costs time
    return state, {"cached": False, "pretrain_cells": len(cells), "pretrain_seconds": seconds}


def _pretrain(config: GraphTransformerConfig, cells: Cells, costs: np.ndarray, n_ops: int,
              device: torch.device, show: bool = False) -> dict[str, torch.Tensor]:
    """Masked-op reconstruction + log FLOPs / log params regression over the corpus (AdamW, cosine)."""
    c = config
    enc = Encoded(cells, c.gt_pe, c.gt_costs and has_costs(cells), device)
    target = torch.from_numpy(((costs - costs.mean(0)) / costs.std(0).clip(1e-9)).astype(np.float32)).to(device)
    n_extra = enc.pe.shape[2] - c.gt_pe
    net = seeded_init(0, lambda: CellTransformer(enc.rel.shape[1], n_ops, n_extra, c.gt_dim, c.gt_layers,
                                                 c.gt_heads, c.gt_pe, 0.0)).to(device)
    cost_head = seeded_init(1, lambda: head(c.gt_dim, 2)).to(device)
    op_head = seeded_init(2, lambda: nn.Linear(c.gt_dim, n_ops)).to(device)
    params = list(net.parameters()) + list(cost_head.parameters()) + list(op_head.parameters())
    optim = torch.optim.AdamW(params, lr=c.gt_pretrain_lr, weight_decay=1e-2)
    batch = 1024
    steps = c.gt_pretrain_epochs * math.ceil(len(enc) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=c.gt_pretrain_lr, total_steps=max(steps, 1),
                                                pct_start=0.05)
    gen = torch.Generator().manual_seed(0)
    # only interior vertices (with an edge in and an edge out) are masked: the input and output ops are fixed
    adj = cells.adjacency.astype(bool)
    maskable = torch.from_numpy(adj.any(axis=1) & adj.any(axis=2)).to(device)
    net.train()
    from searchlab import progress
    bar = progress.bar(total=steps, desc="pretraining", unit="step", show=show, announce=False)
    for _ in range(c.gt_pretrain_epochs):
        order = torch.randperm(len(enc), generator=gen).to(device)
        for start in range(0, len(enc), batch):
            idx = order[start:start + batch]
            ops, pe, rel, real = enc.take(idx)
            masked = maskable[idx] & (torch.rand(ops.shape, generator=gen).to(device) < c.gt_mask)
            inp = ops.masked_fill(masked, n_ops)
            h = net.tokens(net.op_embed(inp) + net.pe_proj(_flip_signs(pe, gen, c.gt_pe)), rel, real)
            w = real[..., None].to(h.dtype)
            pooled = torch.cat([(h * w).sum(1) / w.sum(1), h.masked_fill(~real[..., None], float("-inf")).amax(1)], 1)
            loss = nn.functional.mse_loss(cost_head(pooled), target[idx])
            if bool(masked.any()):
                loss = loss + nn.functional.cross_entropy(op_head(h[masked]), ops[masked])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            bar.update(1)
    bar.close()
    return {f"net.{k}": v.detach() for k, v in net.state_dict().items()} | \
        {f"cost_head.{k}": v.detach() for k, v in cost_head.state_dict().items()}


def _labels(cells: Cells, y) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y, dtype=np.float32))
    if len(cells) < 2 or len(y) != len(cells):
        raise ConfigError(f"the graph transformer needs at least 2 labelled cells with one target each, got "
                          f"{len(cells)} cells and {len(y)} targets")
    return y


# ---- the predictor -------------------------------------------------------------------------------
class GraphTransformerPredictor(Predictor):
    """Ranks cells with an ensemble of fine-tuned graph transformers (see the module docstring)."""

    kind = "graph-transformer"
    Config = GraphTransformerConfig
    spaces = ("nasbench101", "nasbench201")  # whose encodings it reads (the cells' shape is checked on predict)

    def __init__(self, config: GraphTransformerConfig | None = None, *, seed: int = 0, device: str = "auto") -> None:
        super().__init__(config, seed=seed, device=device)
        self.members: list[tuple[CellTransformer, nn.Sequential]] = []
        self.shape = (0, 0, 0)  # (vertices, op codes, per-vertex cost features) the networks were built for
        self.score_stats = torch.zeros(0, 2)  # per member (mean, std) of its training scores
        self.calibration = torch.tensor([1.0, 0.0])
        self.target_range: torch.Tensor | None = None

    def _build(self, seed: int) -> tuple[CellTransformer, nn.Sequential]:
        c, (v, n_ops, n_extra) = self.config, self.shape
        net = seeded_init(seed, lambda: CellTransformer(v, n_ops, n_extra, c.gt_dim, c.gt_layers, c.gt_heads, c.gt_pe,
                                                        c.gt_dropout)).to(self.device)
        return net, seeded_init(seed + 1, lambda: head(c.gt_dim, 1, c.gt_dropout)).to(self.device)

    def fit(self, cells: Cells, y, unlabeled: Cells | None = None) -> "GraphTransformerPredictor":
        """Fine-tune `gt_ensemble` networks from the pretrained encoder (unlabelled cells are not used:
        the pretraining has seen every cell of the space)."""
        y = _labels(cells, y)
        c = self.config
        corpus = pretraining_corpus(cells) if c.gt_pretrain_epochs else None
        n_ops = int(max(cells.ops.max(), corpus[0].ops.max() if corpus else 0)) + 1
        costs = c.gt_costs and has_costs(cells)
        self.shape = (int(cells.adjacency.shape[1]), n_ops, 18 if costs else 0)
        state = None
        if corpus is not None:
            state, info = pretrained_encoder(c, corpus, n_ops, self.device)
            self.meta["pretraining"] = info
        members = [self._build(self.seed + 1000 * m) for m in range(c.gt_ensemble)]
        if state is not None:
            for net, _ in members:
                net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        enc = Encoded(cells, c.gt_pe, costs, self.device)
        steps_per_epoch = math.ceil(len(enc) / min(c.gt_batch or len(enc), len(enc)))
        return self._train_members(members, enc, y, max(c.gt_epochs, math.ceil(c.gt_min_steps / steps_per_epoch)))

    fine_tunes = True

    def fine_tune(self, start: "GraphTransformerPredictor", cells: Cells, y,
                  epochs: int) -> "GraphTransformerPredictor":
        """Train copies of `start`'s fine-tuned networks on (cells, y) for `epochs` epochs, with `fit`'s
        learning rates and schedule: a later round of guided search in a fraction of a fit's time."""
        if not start.members or start.shape[0] != cells.adjacency.shape[1] or int(cells.ops.max()) >= start.shape[1]:
            raise ConfigError("fine_tune needs a graph transformer fitted on cells of the same space")
        y = _labels(cells, y)
        self.shape = start.shape
        self.meta["pretraining"] = start.meta.get("pretraining")
        members = [(copy.deepcopy(net).to(self.device), copy.deepcopy(reg).to(self.device))
                   for net, reg in start.members]
        enc = Encoded(cells, self.config.gt_pe, self.shape[2] > 0, self.device)
        return self._train_members(members, enc, y, epochs)

    def _train_members(self, members: list, enc: Encoded, y: torch.Tensor, epochs: int) -> "GraphTransformerPredictor":
        """Train each member with its own seed, then each member's score statistics and the calibration
        on the training cells."""
        y = y.to(self.device)
        self.members = []
        for m, (net, reg) in enumerate(members):
            seed = self.seed + 1000 * m
            with seeded_torch(seed, self.device), one_cpu_thread(self.device):
                self._train(net, reg, enc, y, seed, epochs)
            self.members.append((net.eval(), reg.eval()))
        scores = self._member_scores(enc)
        self.score_stats = torch.stack([torch.tensor([float(s.mean()), float(s.std()) or 1.0]) for s in scores])
        self.calibrate(self._combine(scores).astype(np.float64), y)
        self.meta.setdefault("train_size", len(enc))
        return self

    def _train(self, net: CellTransformer, reg: nn.Sequential, enc: Encoded, y: torch.Tensor, seed: int,
               epochs: int) -> None:
        """AdamW on the pairwise ranking loss in mini-batches, cosine-decayed learning rate; the
        pretrained encoder learns at `gt_encoder_lr_scale` times the head's rate."""
        c = self.config
        optim = torch.optim.AdamW([{"params": net.parameters(), "lr": c.gt_lr * c.gt_encoder_lr_scale},
                                   {"params": reg.parameters(), "lr": c.gt_lr}], weight_decay=c.gt_weight_decay)
        bs = min(c.gt_batch or len(enc), len(enc))
        steps_per_epoch = math.ceil(len(enc) / bs)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(seed)
        net.train()
        reg.train()
        for _ in range(epochs):
            order = torch.randperm(len(enc), generator=gen).to(self.device)
            for start in range(0, len(enc), bs):
                idx = order[start:start + bs]
                if len(idx) < 2:
                    continue
                ops, pe, rel, real = enc.take(idx)
                loss = pairwise_ranking_loss(reg(net(ops, _flip_signs(pe, gen, c.gt_pe), rel, real)).squeeze(-1), y[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()

    @torch.inference_mode()
    def _member_scores(self, enc: Encoded, batch_size: int = 2048) -> list[torch.Tensor]:
        """Each member's scores, 2,048 cells a pass (on CPU faster than 8,192, whose activations outgrow the caches)."""
        out = []
        for net, reg in self.members:
            parts = [reg(net(*enc.take(slice(s, s + batch_size)))).squeeze(-1).float()
                     for s in range(0, len(enc), batch_size)]
            out.append(torch.cat(parts).cpu())
        return out

    def _combine(self, scores: list[torch.Tensor]) -> np.ndarray:
        """The members' standardised scores, averaged."""
        z = [(s - self.score_stats[m, 0]) / self.score_stats[m, 1] for m, s in enumerate(scores)]
        return torch.stack(z).mean(0).numpy()

    @torch.inference_mode()
    def predict(self, cells: Cells, batch_size: int = 50000, progress: bool = False) -> np.ndarray:
        """Scores in the target's units (a monotone map of the ensemble's mean standardised score)."""
        if not self.members:
            raise ConfigError("the graph transformer is not trained; call fit() or load a trained one")
        if cells.adjacency.shape[1] != self.shape[0] or (len(cells) and int(cells.ops.max()) >= self.shape[1]):
            raise ConfigError(f"these cells have {cells.adjacency.shape[1]} vertices and op codes up to "
                              f"{int(cells.ops.max())}; the predictor was trained on {self.shape[0]} vertices and "
                              f"op codes below {self.shape[1]}")
        out = np.empty(len(cells), np.float64)
        starts = range(0, len(cells), batch_size)
        if progress and len(starts) > 1:
            from searchlab import progress as progress_lines
            starts = progress_lines.bar(starts, desc=f"predicting {len(cells):,} cells", unit="batch", show=True)
        for start in starts:
            part = slice(start, min(start + batch_size, len(cells)))
            batch = cells.take(np.arange(part.start, part.stop))  # keeps table rows: costs from the cache
            enc = Encoded(batch, self.config.gt_pe, self.shape[2] > 0, self.device)
            out[part] = self._combine(self._member_scores(enc))
        slope, intercept = (float(v) for v in self.calibration)
        values = out * slope + intercept
        if self.target_range is not None:
            values = bend_into_unit_interval(values, *(float(v) for v in self.target_range))
        return values.astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        if not self.members:
            raise ConfigError("cannot save an untrained graph transformer")
        t: dict[str, torch.Tensor] = {"shape": torch.tensor(self.shape, dtype=torch.int64),
                                      "score_stats": self.score_stats.double(),
                                      "calibration": self.calibration.double()}
        for m, (net, reg) in enumerate(self.members):
            t.update({f"member{m}.net.{k}": v for k, v in net.state_dict().items()})
            t.update({f"member{m}.head.{k}": v for k, v in reg.state_dict().items()})
        if self.target_range is not None:
            t["target_range"] = self.target_range.double()
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        shape = tensors["shape"]
        if shape.shape != (3,):
            raise ValueError("the network shape has the wrong size")
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.score_stats = tensors["score_stats"].float()
        if self.score_stats.shape != (self.config.gt_ensemble, 2):
            raise ValueError("the ensemble's score statistics do not match gt_ensemble")
        self.members = []
        for m in range(self.config.gt_ensemble):
            net, reg = self._build(0)
            net.load_state_dict({k[len(f"member{m}.net."):]: v for k, v in tensors.items()
                                 if k.startswith(f"member{m}.net.")}, strict=True)
            reg.load_state_dict({k[len(f"member{m}.head."):]: v for k, v in tensors.items()
                                 if k.startswith(f"member{m}.head.")}, strict=True)
            self.members.append((net.eval(), reg.eval()))
        self.calibration = tensors["calibration"].double()
        self.target_range = tensors["target_range"].double() if "target_range" in tensors else None
        if self.calibration.shape != (2,) or (self.target_range is not None and self.target_range.shape != (2,)):
            raise ValueError("calibration or target range has the wrong shape")
