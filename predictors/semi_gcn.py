"""The semi-supervised GCN assessor (Tang et al., CVPR 2020): unlabelled cells help label the rest.

1. An auto-encoder embeds every cell: a small GCN over the cell's own graph (adjacency forward and
   backward, one-hot ops) pooled to a vector, decoded back to the adjacency and the ops.
2. A relation graph links each labelled or unlabelled cell to its k nearest neighbours in embedding
   space with Gaussian weights exp(-d^2 / (2 sigma^2)), symmetrised; `GCNConv` adds self loops and
   the symmetric normalisation D^-1/2 (A + I) D^-1/2.
3. A GCN (torch_geometric GCNConv, 2 layers by default) over that graph predicts every node's
   target, by default as the normal score of its rank among the labelled cells (`normal_scores`).
   Loss = MSE on labelled nodes + lambda * reconstruction of all nodes, trained end to end; the
   graph is rebuilt from the current embeddings every `rebuild_every` epochs. Predictions go back
   to the target's units through the inverse of that transform (`through_knots`).

Inductive use: new cells are embedded by the encoder and join the final graph as extra nodes with
edges *from* their k nearest training nodes (same Gaussian weights, plus a self loop). They send no
edges, so the training nodes' outputs are unchanged and a cell's prediction does not depend on
which other new cells are predicted with it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from searchlab.predictors.base import Predictor, normal_scores, seeded_init, target_knots, through_knots
from searchlab.predictors.configs import SemiGCNConfig
from searchlab.predictors.features import MAX_VERTICES, Cells, encoding
from searchlab.errors import ConfigError

N_OP_CLASSES = 6  # NAS-Bench-101: pad, input, conv1x1, conv3x3, maxpool, output (other spaces: their encoding's)


def cell_tensors(cells: Cells, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Adjacency (N, V, V) float and op class indices (N, V) long."""
    return (torch.from_numpy(cells.adjacency.astype(np.float32)).to(device),
            torch.from_numpy(cells.ops.astype(np.int64)).to(device))


class CellAutoEncoder(nn.Module):
    """Dense GCN over each V-vertex cell -> pooled embedding -> adjacency and op logits."""

    def __init__(self, dim: int, vertices: int = MAX_VERTICES, op_classes: int = N_OP_CLASSES) -> None:
        super().__init__()
        self.op_classes = op_classes
        self.register_buffer("triu", torch.triu_indices(vertices, vertices, offset=1), persistent=False)
        self.inp = nn.Linear(op_classes, dim)
        self.layers = nn.ModuleList([nn.ModuleDict({"self": nn.Linear(dim, dim), "fwd": nn.Linear(dim, dim),
                                                    "bwd": nn.Linear(dim, dim)}) for _ in range(2)])
        self.out = nn.Linear(dim, dim)
        self.dec = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(),
                                 nn.Linear(2 * dim, self.triu.shape[1] + vertices * op_classes))

    def encode(self, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        mask = (ops > 0).float()
        h = torch.relu(self.inp(nn.functional.one_hot(ops, self.op_classes).float()))
        fwd = adj.transpose(1, 2) / adj.sum(1, keepdim=True).transpose(1, 2).clamp_min(1)  # mean over predecessors
        bwd = adj / adj.sum(2, keepdim=True).clamp_min(1)  # mean over successors
        for layer in self.layers:
            h = torch.relu(layer["self"](h) + fwd @ layer["fwd"](h) + bwd @ layer["bwd"](h))
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return self.out(pooled)

    def reconstruction_loss(self, z: torch.Tensor, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        logits = self.dec(z)
        n_edges = self.triu.shape[1]
        adj_target = adj[:, self.triu[0], self.triu[1]]
        edge_loss = nn.functional.binary_cross_entropy_with_logits(logits[:, :n_edges], adj_target)
        op_logits = logits[:, n_edges:].reshape(-1, self.op_classes)
        return edge_loss + nn.functional.cross_entropy(op_logits, ops.reshape(-1))


class Assessor(nn.Module):
    """GCNConv layers over the relation graph: embedding -> predicted (standardised) accuracy."""

    def __init__(self, dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv
        sizes = [dim] + [hidden] * (layers - 1) + [1]
        self.convs = nn.ModuleList([GCNConv(a, b, add_self_loops=True, normalize=True)
                                    for a, b in zip(sizes[:-1], sizes[1:])])
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            if i < len(self.convs) - 1:
                x = nn.functional.dropout(torch.relu(x), self.dropout, self.training)
        return x.squeeze(-1)


def knn(query: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool, chunk: int = 4096):
    """k nearest rows of `base` for each row of `query`: (distances, indices), each (Q, k)."""
    k = min(k, base.shape[0] - (1 if exclude_self else 0))
    dists, idxs = [], []
    for start in range(0, query.shape[0], chunk):
        d = torch.cdist(query[start:start + chunk], base)
        if exclude_self:
            rows = torch.arange(d.shape[0], device=d.device)
            d[rows, rows + start] = float("inf")
        val, idx = torch.topk(d, k, dim=1, largest=False)
        dists.append(val)
        idxs.append(idx)
    return torch.cat(dists), torch.cat(idxs)


def relation_graph(z: torch.Tensor, k: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Symmetric k-NN graph of embeddings with Gaussian weights: (edge_index, edge_weight, sigma used)."""
    d, idx = knn(z, z, k, exclude_self=True)
    sigma = float(sigma) if sigma > 0 else max(float(d.mean()), 1e-6)
    w = torch.exp(-d.pow(2) / (2 * sigma ** 2))
    n = z.shape[0]
    src = idx.reshape(-1)
    dst = torch.arange(n, device=z.device).repeat_interleave(idx.shape[1])
    # Symmetrise: keep each undirected pair once per direction with the larger weight.
    a = torch.cat([src, dst])
    b = torch.cat([dst, src])
    ww = torch.cat([w.reshape(-1), w.reshape(-1)])
    key = a * n + b
    order = torch.argsort(ww, descending=True)
    key_sorted = key[order]
    uniq, first = np.unique(key_sorted.cpu().numpy(), return_index=True)
    keep = order[torch.from_numpy(first).to(z.device)]
    return torch.stack([a[keep], b[keep]]), ww[keep], sigma


class SemiGCNPredictor(Predictor):
    """Semi-supervised assessor: auto-encoder embeddings + k-NN relation graph + GCN."""

    kind = "semi-gcn"
    Config = SemiGCNConfig
    spaces = ("nasbench101", "nasbench201")  # whose encodings it reads

    def __init__(self, config: SemiGCNConfig | None = None, *, seed: int = 0, device: str = "auto") -> None:
        super().__init__(config, seed=seed, device=device)
        self.encoder: CellAutoEncoder | None = None
        self.assessor: Assessor | None = None
        self.train_adj = self.train_ops = None
        self.sigma = 0.0
        self.knots = np.zeros((2, 0))  # (score, target) pairs that map predictions to the target's units
        self._graph = None
        self.space = "nasbench101"

    def _build(self) -> None:
        c = self.config
        enc = encoding(self.space)
        self.encoder = seeded_init(self.seed, lambda: CellAutoEncoder(c.embed_dim, enc.vertices,
                                                                      enc.op_codes)).to(self.device)
        self.assessor = seeded_init(self.seed + 1, lambda: Assessor(c.embed_dim, c.hidden, c.gcn_layers,
                                                                    c.dropout)).to(self.device)

    def fit(self, cells: Cells, y, unlabeled: Cells | None = None) -> "SemiGCNPredictor":
        """Labelled cells first, then the unlabelled ones, form the nodes of the relation graph."""
        y = np.asarray(y, dtype=np.float64)
        if len(cells) < 2 or len(y) != len(cells):
            raise ConfigError(f"the assessor needs at least 2 labelled cells with one target each, got "
                              f"{len(cells)} cells and {len(y)} targets")
        c = self.config
        if unlabeled is not None and len(unlabeled) and unlabeled.space != cells.space:
            raise ConfigError(f"labelled cells are {cells.space} cells, unlabelled ones {unlabeled.space}")
        self.space = cells.space
        all_cells = cells if unlabeled is None or len(unlabeled) == 0 else Cells.concat(
            [cells.take(np.arange(len(cells))), unlabeled.without_index()])
        adj, ops = cell_tensors(Cells(all_cells.adjacency, all_cells.ops), self.device)
        if c.target_transform == "rank":
            scores = normal_scores(y)
            self.knots = target_knots(scores, y)
        else:  # winsorised z-scores: the few diverged cells (accuracy ~0.1) would otherwise dominate the MSE
            mean, std = float(y.mean()), float(y.std()) or 1.0
            scores = np.clip((y - mean) / std, -3.0, 3.0)
            ends = np.unique([y.min(), y.max()])  # one knot (a constant) when all targets are equal
            self.knots = np.stack([(ends - mean) / std, ends])  # the line score * std + mean
        target = torch.as_tensor(scores, dtype=torch.float32, device=self.device)
        n_lab = len(cells)
        self._build()
        params = list(self.encoder.parameters()) + list(self.assessor.parameters())
        optim = torch.optim.Adam(params, lr=c.gcn_lr, weight_decay=5e-4)
        gen = torch.Generator().manual_seed(self.seed)
        edge_index = edge_weight = None
        for epoch in range(c.gcn_epochs):
            self.encoder.train()
            self.assessor.train()
            z = self.encoder.encode(adj, ops)
            if epoch % c.rebuild_every == 0:
                with torch.no_grad():
                    edge_index, edge_weight, _ = relation_graph(z.detach(), c.knn, c.sigma)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                pred = self.assessor(z, edge_index, edge_weight)
            loss = nn.functional.mse_loss(pred[:n_lab], target)
            if c.lam > 0:
                loss = loss + c.lam * self.encoder.reconstruction_loss(z, adj, ops)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
        self.train_adj, self.train_ops = adj.to(torch.uint8), ops.to(torch.uint8)
        self.sigma = 0.0
        self._finalize_graph()
        self.meta.setdefault("train_size", n_lab)
        self.meta.setdefault("unlabeled_size", len(all_cells) - n_lab)
        self.meta["space"] = self.space
        return self

    @torch.no_grad()
    def _finalize_graph(self) -> None:
        """The relation graph of the training nodes from the final embeddings (used to predict)."""
        self.encoder.eval()
        self.assessor.eval()
        z = self.encoder.encode(self.train_adj.float(), self.train_ops.long())
        edge_index, edge_weight, sigma = relation_graph(z, self.config.knn, self.config.sigma)
        if self.sigma <= 0:
            self.sigma = sigma
        self._graph = (z, edge_index, edge_weight)

    @torch.no_grad()
    def predict(self, cells: Cells, batch_size: int = 20000, progress: bool = False) -> np.ndarray:
        if self.encoder is None or self._graph is None:
            raise ConfigError("the assessor is not trained; call fit() or load a trained one")
        from searchlab.predictors.renas import check_space
        check_space(self, cells)
        z_train, e_train, w_train = self._graph
        n_train = z_train.shape[0]
        out = np.empty(len(cells), np.float32)
        starts = range(0, len(cells), batch_size)
        if progress and len(starts) > 1:
            from searchlab import progress as progress_lines
            starts = progress_lines.bar(starts, desc=f"predicting {len(cells):,} cells", unit="batch", show=True)
        for start in starts:
            part = cells.take(np.arange(start, min(start + batch_size, len(cells))))
            adj, ops = cell_tensors(Cells(part.adjacency, part.ops), self.device)
            z_new = self.encoder.encode(adj, ops)
            d, idx = knn(z_new, z_train, self.config.knn, exclude_self=False)
            w = torch.exp(-d.pow(2) / (2 * self.sigma ** 2))
            new_ids = n_train + torch.arange(len(part), device=self.device).repeat_interleave(idx.shape[1])
            edge_index = torch.cat([e_train, torch.stack([idx.reshape(-1), new_ids])], dim=1)
            edge_weight = torch.cat([w_train, w.reshape(-1)])
            pred = self.assessor(torch.cat([z_train, z_new]), edge_index, edge_weight)[n_train:]
            out[start:start + len(part)] = pred.cpu().numpy()
        return through_knots(out, self.knots).astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        if self.encoder is None:
            raise ConfigError("cannot save an untrained assessor")
        t = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        t.update({f"assessor.{k}": v for k, v in self.assessor.state_dict().items()})
        t["train_adjacency"], t["train_ops"] = self.train_adj, self.train_ops
        t["scalars"] = torch.tensor([self.sigma], dtype=torch.float64)
        t["target_knots"] = torch.from_numpy(self.knots)
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.space = str(self.meta.get("space", "nasbench101"))
        vertices = encoding(self.space).vertices
        self._build()
        self.encoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})
        self.assessor.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("assessor.")})
        self.train_adj = tensors["train_adjacency"].to(self.device, torch.uint8)
        self.train_ops = tensors["train_ops"].to(self.device, torch.uint8)
        if self.train_adj.shape[1:] != (vertices, vertices) or self.train_ops.shape != self.train_adj.shape[:2]:
            raise ValueError("training cells have the wrong shape")
        self.sigma = float(tensors["scalars"][0])
        if "target_knots" not in tensors:
            raise ValueError("no target_knots: saved by an earlier searchlab")
        self.knots = tensors["target_knots"].double().numpy()
        if self.knots.ndim != 2 or self.knots.shape[0] != 2:
            raise ValueError("target knots have the wrong shape")
        self._finalize_graph()
