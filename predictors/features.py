"""Cell encodings for the predictors: the padded 7x7 layout and the ReNAS 19x7x7 feature tensor.

A cell batch is held as `Cells`: adjacency (N, 7, 7) uint8 and op codes (N, 7) int8 in the ReNAS
layout, where a cell with fewer than 7 vertices gets zero rows/columns inserted *before* the output
vertex, so the output vertex is always index 6. Per-vertex FLOPs and parameters of the 9 cells of
the NAS-Bench-101 network (stem 128 channels, 3 stacks x 3 cells, 32x32 input) are computed in
closed form from the per-vertex channel counts, vectorised over all cells, and cached on disk for
the whole table (they are what the ReNAS tensor multiplies with the adjacency matrix).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from searchlab import io
from searchlab.store.cache import cache_dir

MAX_VERTICES = 7
# Op codes of the ReNAS type channel (0 marks a padding vertex).
PAD, INPUT, CONV1X1, CONV3X3, MAXPOOL, OUTPUT = 0, 1, 2, 3, 4, 5
OP_CODES = {"input": INPUT, "conv1x1-bn-relu": CONV1X1, "conv3x3-bn-relu": CONV3X3,
            "maxpool3x3": MAXPOOL, "output": OUTPUT}
# The table's op integers: -1 input, 0 conv3x3, 1 conv1x1, 2 maxpool, -2 output, -3 padding.
_TABLE_OP_TO_CODE = {-1: INPUT, 0: CONV3X3, 1: CONV1X1, 2: MAXPOOL, -2: OUTPUT, -3: PAD}

# (in channels, out channels, spatial positions H*W) of the 9 cells of the NAS-Bench-101 network.
NETWORK_CELLS: tuple[tuple[int, int, int], ...] = (
    (128, 128, 32 * 32), (128, 128, 32 * 32), (128, 128, 32 * 32),
    (128, 256, 16 * 16), (256, 256, 16 * 16), (256, 256, 16 * 16),
    (256, 512, 8 * 8), (512, 512, 8 * 8), (512, 512, 8 * 8),
)
N_CHANNELS = 1 + 2 * len(NETWORK_CELLS)  # 19
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Cells:
    """A batch of NAS-Bench-101 cells in the padded ReNAS layout (output vertex at index 6).

    `table_index` (optional) holds each cell's row in the bundled table, so encodings can be read
    from the on-disk cache instead of recomputed.
    """

    adjacency: np.ndarray  # (N, V, V) uint8, upper triangular (V = 7 for NAS-Bench-101)
    ops: np.ndarray  # (N, V) int8 op codes of the space's encoding (0 = padding)
    table_index: np.ndarray | None = None
    space: str = "nasbench101"  # whose encoding these are: `encoding(cells.space)` says how to read them

    def __len__(self) -> int:
        return int(self.adjacency.shape[0])

    def take(self, idx) -> "Cells":
        idx = np.asarray(idx)
        return Cells(self.adjacency[idx], self.ops[idx],
                     None if self.table_index is None else self.table_index[idx], self.space)

    def without_index(self) -> "Cells":
        return Cells(self.adjacency, self.ops, None, self.space)

    @staticmethod
    def concat(parts: list["Cells"]) -> "Cells":
        ti = None if any(p.table_index is None for p in parts) else np.concatenate([p.table_index for p in parts])
        return Cells(np.concatenate([p.adjacency for p in parts]), np.concatenate([p.ops for p in parts]), ti,
                     parts[0].space)


@dataclass(frozen=True)
class Encoding:
    """How a space's cells are laid out for the predictors: what they read instead of constants.

    `costs(cells)` gives per-vertex multiply-accumulates and parameters, two (N, cost_cells, vertices)
    float32 arrays (one row per cell of the space's network); `table(db)` the predictors' view of the
    space's table (a `predictors.table.PredictorTable`); `cells_of(items)` turns user input (arch
    strings, hashes, genomes) into table rows, raising InvalidArchitecture/ConfigError on bad input.
    """

    space: str
    vertices: int
    op_codes: int  # size of the op vocabulary, padding (0) included
    cost_cells: int
    module: str  # where costs/table/rows live

    @property
    def channels(self) -> int:
        """Channels of the ReNAS tensor: op type, then FLOPs and params of each network cell."""
        return 1 + 2 * self.cost_cells

    def _impl(self):
        import importlib
        return importlib.import_module(self.module)


ENCODINGS = {
    "nasbench101": Encoding("nasbench101", 7, 6, 9, "searchlab.predictors.table"),
    "nasbench201": Encoding("nasbench201", 8, 8, 3, "searchlab.predictors.nasbench201_encoding"),
}


def encoding(space: str) -> Encoding:
    """The encoding of a table space; an unknown one is a ConfigError naming those there are."""
    from searchlab.errors import ConfigError
    if space not in ENCODINGS:
        raise ConfigError(f"no predictor encoding for space {space!r}; predictors work on {', '.join(ENCODINGS)}")
    return ENCODINGS[space]


def table_ops_to_codes(table_ops: np.ndarray) -> np.ndarray:
    """The bundled table's op integers (-1 input, 0 conv3x3, 1 conv1x1, 2 maxpool, -2 output, -3 pad)."""
    lut = np.zeros(256, np.int8)
    for k, v in _TABLE_OP_TO_CODE.items():
        lut[k & 0xFF] = v
    return lut[np.asarray(table_ops).astype(np.int16) & 0xFF]


def vertex_channels(adjacency: np.ndarray, in_channels: int, out_channels: int) -> np.ndarray:
    """Channels at each vertex of every cell (the NAS-Bench-101 rule), vectorised: (N, 7) int64.

    Vertices feeding the output split its channels (the first ones in vertex order get the
    remainder); other interior vertices take the max of the vertices they feed. Padding vertices
    get 0, the input `in_channels`, the output `out_channels`.
    """
    adj = adjacency.astype(bool)
    n = adj.shape[0]
    out = MAX_VERTICES - 1
    ch = np.zeros((n, MAX_VERTICES), np.int64)
    ch[:, 0] = in_channels
    ch[:, out] = out_channels
    feeds_out = adj[:, 1:out, out]  # (N, 5)
    degree = feeds_out.sum(axis=1)
    safe = np.maximum(degree, 1)
    base = out_channels // safe
    extra = out_channels % safe
    rank = np.cumsum(feeds_out, axis=1) - 1  # order among vertices feeding the output
    inner = np.where(feeds_out, base[:, None] + (rank < extra[:, None]), 0)
    ch[:, 1:out] = inner
    for v in range(out - 1, 0, -1):
        later = np.where(adj[:, v, v + 1:out], ch[:, v + 1:out], 0)
        best = later.max(axis=1) if later.shape[1] else np.zeros(n, np.int64)
        ch[:, v] = np.where(feeds_out[:, v - 1], ch[:, v], best)
    return ch


def vertex_costs(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex multiply-accumulates and parameters of each of the 9 network cells: two (N, 9, 7).

    A vertex's cost is its op (conv3x3/conv1x1 with batch norm; max pooling is free) plus the 1x1
    projection (conv + batch norm) from the cell input when the input feeds it; the output vertex
    costs only its input projection. Matches the modules nasbench_pytorch builds.
    """
    adj = adjacency.astype(bool)
    n = adj.shape[0]
    out = MAX_VERTICES - 1
    kernel = np.select([ops == CONV3X3, ops == CONV1X1], [9, 1], 0).astype(np.float64)  # (N, 7)
    has_bn = (kernel > 0).astype(np.float64)
    from_input = adj[:, 0, :].astype(np.float64)  # (N, 7) projection from the cell input
    flops = np.zeros((n, len(NETWORK_CELLS), MAX_VERTICES), np.float64)
    params = np.zeros_like(flops)
    for c, (cin, cout, hw) in enumerate(NETWORK_CELLS):
        ch = vertex_channels(adjacency, cin, cout).astype(np.float64)
        ch[:, 0] = 0.0
        op_params = kernel * ch * ch + 2.0 * ch * has_bn
        proj_params = from_input * (cin * ch + 2.0 * ch)
        op_params[:, out] = 0.0
        params[:, c] = op_params + proj_params
        flops[:, c] = (kernel * ch * ch + from_input * cin * ch) * hw
        flops[:, c, out] = from_input[:, out] * cin * cout * hw
    return flops.astype(np.float32), params.astype(np.float32)


def feature_tensor(cells: Cells, costs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The ReNAS 19x7x7 tensor of each cell: (N, 19, 7, 7) float32.

    Channel 0 is the op-type vector broadcast over rows times A (entry (i, j) = A[i, j] * type[j]);
    channels 1-9 the per-vertex FLOPs of the 9 network cells times A; channels 10-18 their params.
    """
    flops, params = costs if costs is not None else vertex_costs(cells.adjacency, cells.ops)
    per_vertex = np.concatenate([cells.ops[:, None, :].astype(np.float32), flops, params], axis=1)  # (N, 19, 7)
    return cells.adjacency[:, None, :, :].astype(np.float32) * per_vertex[:, :, None, :]


def _fingerprint(cells: Cells) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(cells.adjacency).tobytes())
    h.update(np.ascontiguousarray(cells.ops).tobytes())
    return h.hexdigest()[:16]


def cached_vertex_costs(cells: Cells, name: str = "nasbench101") -> tuple[np.ndarray, np.ndarray]:
    """`vertex_costs` of a whole table, read from / written to the on-disk cache.

    The cache file name carries a fingerprint of the cells, so a different table never reads a
    stale file; writes go to a temporary file renamed into place.
    """
    path = cache_dir() / f"{name}_vertex_costs_v{_CACHE_VERSION}_{_fingerprint(cells)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                flops, params = data["flops"], data["params"]
            if flops.shape == (len(cells), len(NETWORK_CELLS), MAX_VERTICES) and params.shape == flops.shape:
                return flops, params
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            pass
    flops, params = vertex_costs(cells.adjacency, cells.ops)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        def write(tmp) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a path
                np.savez(fh, flops=flops, params=params)

        io.atomic_write(path, write)
    except OSError:
        pass  # caching is an optimisation; an unwritable cache directory only costs time
    return flops, params


def random_topological_orders(cells: Cells, rng: np.random.Generator) -> np.ndarray:
    """(N, 7) vertex orders: for each cell a random topological order of its vertices.

    Re-ordering the intermediate vertices of a cell consistently with its edges describes the same
    network, so `reorder_features` with these orders gives other encodings of the same cell (a label-
    preserving augmentation for the position-sensitive ReNAS tensor). The input stays first, the
    output last and padding vertices in place.
    """
    return topological_orders(cells, rng.random((len(cells), cells.adjacency.shape[1])))


def fixed_topological_orders(cells: Cells, view) -> np.ndarray:
    """Like `random_topological_orders`, but the random keys come from a hash of each cell and `view`:
    the same cell gets the same orders whatever else is in the batch (for averaging predictions).
    `view` is an int, giving (N, 7), or an array of them, giving view.shape + (N, 7) in one pass."""
    v = cells.adjacency.shape[1]
    adj, ops = cells.adjacency.astype(np.uint64), cells.ops.astype(np.uint64) & np.uint64(7)
    upper = np.triu_indices(v, 1)
    code = (adj[:, upper[0], upper[1]] << np.arange(len(upper[0]), dtype=np.uint64)).sum(axis=1) \
        + (ops << (np.uint64(len(upper[0])) + np.uint64(3) * np.arange(v, dtype=np.uint64))).sum(axis=1)
    # (with 8 vertices the code has 52 bits, so a few reach the salt's: the keys stay well mixed)
    views = np.asarray(view, dtype=np.uint64)[..., None, None]
    salt = (views << np.uint64(48)) + (np.arange(v, dtype=np.uint64) << np.uint64(44))
    bits = _splitmix64(code[:, None] ^ salt)  # 42 bits of cell code never reach the salt's bits
    return topological_orders(cells, (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A 64-bit mixing function (Steele et al., SplittableRandom): well-spread bits from any input."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def topological_orders(cells: Cells, keys: np.ndarray) -> np.ndarray:
    """Topological vertex orders drawn by keys in [0, 1), (..., N, 7) orders for (..., N, 7) keys (the
    cells' closure and depths are computed once for all leading dimensions): each intermediate vertex
    takes the largest key over itself and its ancestors, ties broken by depth, which respects every edge."""
    adj = cells.adjacency.astype(bool)
    n, v = adj.shape[:2]
    reach = adj.copy()
    for _ in range(v - 1):  # transitive closure
        reach |= (reach.astype(np.uint8) @ adj.astype(np.uint8)).astype(bool)
    depth = np.zeros((n, v), np.int64)
    for _ in range(v - 1):  # longest path from the input
        depth = np.max(np.where(adj, depth[:, :, None] + 1, 0), axis=1)
    real = adj.any(axis=1) | adj.any(axis=2)
    inner = real.copy()
    inner[:, 0] = inner[:, v - 1] = False
    r = np.where(inner, keys, -1.0)
    anc_or_self = reach | np.eye(v, dtype=bool)[None]  # [b, u, w]: u is w or an ancestor of w
    key = np.max(np.where(anc_or_self, r[..., :, None], -1.0), axis=-2)
    key = np.where(inner, key, np.where(real, 3.0, 2.0))  # padding after the inner vertices
    key[..., 0], key[..., v - 1] = -1.0, 4.0
    position = np.broadcast_to(np.arange(v), key.shape)
    return np.lexsort((position, np.broadcast_to(depth, key.shape), key), axis=-1).astype(np.int64)


def reorder_features(x, orders):
    """Re-order the vertices of (N, C, 7, 7) feature tensors: out[:, :, i, j] = x[:, :, o[i], o[j]]."""
    import torch

    o = torch.as_tensor(orders, device=x.device)
    b = torch.arange(len(x), device=x.device)[:, None, None]
    return x[b, :, o[:, :, None], o[:, None, :]].permute(0, 3, 1, 2)
