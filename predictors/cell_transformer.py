"""The graph transformer's layers and inputs: the structure encodings of a cell (real vertices, directed
path relations, Laplacian positions, per-vertex costs), the attention block with its path-distance bias,
the encoder and the regression head. `graph_transformer.py` pretrains and fits them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from searchlab.predictors.features import Cells


# ---- structure of the cells ----------------------------------------------------------------------
def real_vertices(adjacency: np.ndarray) -> np.ndarray:
    """(N, V) bool: vertices with an edge (padding vertices have none; the input and output always do)."""
    adj = adjacency.astype(bool)
    return adj.any(axis=1) | adj.any(axis=2)


def path_relations(adjacency: np.ndarray) -> np.ndarray:
    """(N, V, V) int64 relation of vertex j to vertex i: 0 unrelated, 1 itself, 1 + d when j is d edges
    after i on a shortest path, V + d when j is d edges before i (d = 1 .. V - 1)."""
    adj = torch.from_numpy(adjacency.astype(np.float32))
    n, v = adj.shape[:2]
    dist = torch.zeros((n, v, v), dtype=torch.int64)  # forward shortest-path distances, 0 = not reachable
    frontier = adj > 0
    reached = torch.zeros_like(frontier)
    for d in range(1, v):
        new = frontier & ~reached
        dist[new] = d
        reached |= new
        frontier = torch.bmm(frontier.float(), adj) > 0  # batched float products: numpy's integer @ is slow
    rel = torch.where(dist > 0, 1 + dist, 0)
    back = dist.transpose(1, 2)
    rel = torch.where(back > 0, v + back, rel)
    rel[:, torch.arange(v), torch.arange(v)] = 1
    return rel.numpy()


def laplacian_encoding(adjacency: np.ndarray, k: int) -> np.ndarray:
    """(N, V, k) float32: the k eigenvectors of the symmetric normalised Laplacian of each cell's
    undirected graph with the smallest eigenvalues (TNASP, PINAT). Padding vertices get eigenvalue 2
    (above every real one) so their eigenvectors come last and real vertices' rows are unaffected."""
    a = torch.from_numpy(adjacency.astype(np.float32))
    a = a + a.transpose(1, 2)
    deg = a.sum(2)
    inv = torch.where(deg > 0, deg.clamp_min(1e-9).rsqrt(), torch.zeros_like(deg))
    lap = torch.eye(a.shape[1]).expand_as(a) - inv[:, :, None] * a * inv[:, None, :]
    lap = lap + torch.diag_embed((deg == 0).float())
    _, vectors = torch.linalg.eigh(lap)
    return vectors[:, :, :k].contiguous().numpy()


# ---- the network ---------------------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer encoder block whose attention takes an additive (N, H, V, V) bias."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, v, d = h.shape
        q, k, val = self.qkv(self.norm1(h)).view(n, v, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = nn.functional.scaled_dot_product_attention(q, k, val, attn_mask=bias)
        h = h + nn.functional.dropout(self.proj(a.transpose(1, 2).reshape(n, v, d)), self.dropout, self.training)
        return h + nn.functional.dropout(self.ff(self.norm2(h)), self.dropout, self.training)


class CellTransformer(nn.Module):
    """Tokens (op embedding + Laplacian encoding and per-vertex costs, projected) -> blocks with path-distance attention bias ->
    mean and max over real vertices -> embedding. `n_ops` op codes plus one mask token."""

    def __init__(self, n_vertices: int, n_ops: int, n_extra: int, dim: int, layers: int, heads: int, pe: int,
                 dropout: float) -> None:
        super().__init__()
        self.n_vertices, self.n_ops, self.pe = n_vertices, n_ops, pe
        self.op_embed = nn.Embedding(n_ops + 1, dim)
        self.pe_proj = nn.Linear(pe + n_extra, dim, bias=False)
        self.rel_bias = nn.Embedding(2 * n_vertices, layers * heads)
        nn.init.zeros_(self.rel_bias.weight)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.heads = heads

    def tokens(self, h: torch.Tensor, rel: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        n, v = rel.shape[:2]
        bias = self.rel_bias(rel).view(n, v, v, len(self.blocks), self.heads).permute(3, 0, 4, 1, 2)
        bias = bias.masked_fill(~real[None, :, None, None, :], float("-inf"))
        for block, b in zip(self.blocks, bias):
            h = block(h, b)
        return self.norm(h)

    def forward(self, ops: torch.Tensor, pe: torch.Tensor, rel: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        h = self.tokens(self.op_embed(ops) + self.pe_proj(pe), rel, real)
        w = real[..., None].to(h.dtype)
        mean = (h * w).sum(1) / w.sum(1).clamp_min(1)
        peak = h.masked_fill(~real[..., None], float("-inf")).amax(1)
        return torch.cat([mean, peak], dim=1)


def head(dim: int, out: int, dropout: float = 0.0) -> nn.Sequential:
    """The 2-layer regressor on the pooled (2 * dim) embedding."""
    return nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, out))


class Encoded:
    """The tensors the network reads for a batch of cells (computed once per fit or prediction)."""

    def __init__(self, cells: Cells, pe: int, costs: bool, device: torch.device) -> None:
        self.ops = torch.from_numpy(cells.ops.astype(np.int64)).to(device)
        self.real = torch.from_numpy(real_vertices(cells.adjacency)).to(device)
        self.rel = torch.from_numpy(path_relations(cells.adjacency)).to(device)
        self.pe = torch.from_numpy(laplacian_encoding(cells.adjacency, pe)).to(device)
        self.n_pe = pe
        if costs:
            self.pe = torch.cat([self.pe, torch.from_numpy(vertex_cost_features(cells)).to(device)], dim=2)

    def __len__(self) -> int:
        return int(self.ops.shape[0])

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.ops[idx], self.pe[idx], self.rel[idx], self.real[idx]


def vertex_cost_features(cells: Cells) -> np.ndarray:
    """(N, V, 18) float32: log(1 + multiply-accumulates) and log(1 + parameters) of each vertex in each
    of the 9 cells of the NAS-Bench-101 network (the ReNAS cost model, `predictors/features.py`),
    divided by 20 to lie in [0, 1]. They tell the tokens the channel counts the graph implies."""
    from searchlab.predictors.table import costs_of

    flops, params = costs_of(cells)
    return (np.log1p(np.concatenate([flops, params], axis=1)) / 20.0).transpose(0, 2, 1).astype(np.float32)


def has_costs(cells: Cells) -> bool:
    """Whether the NAS-Bench-101 cost model applies (7-vertex cells in the padded layout)."""
    from searchlab.predictors.features import MAX_VERTICES
    return cells.adjacency.shape[1] == MAX_VERTICES
