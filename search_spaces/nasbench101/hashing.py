"""The official NAS-Bench-101 module hash, vectorised over many graphs at once.

`graph_util.hash_module` runs a Weisfeiler-Lehman refinement whose vertex labels are MD5 hex
strings: start from md5(str((out_degree, in_degree, op_label))), then `n` times replace each label
by md5(sorted in-neighbour labels joined + '|' + sorted out-neighbour labels joined + '|' + own),
and finish with md5(str(sorted(labels))). One graph at a time that costs ~0.25 ms of CPU per graph.

Here every label is an integer id into a table of distinct hex strings, numbered in string order
(so sorting ids sorts the strings). Each round builds, for all vertices of all graphs at once, the
row (sorted in-neighbour ids, sorted out-neighbour ids, own id), writes the strings to hash as
fixed-width byte rows (grouped by in/out degree) and runs MD5 over them in one tight loop. While
there are few labels (the first round) each distinct row is hashed once; once a round no longer
splits any class of vertices (the partition is stable), only one vertex per label is hashed and
the others are relabelled through it. The result is bit-for-bit the official hash
(tests compare it with `hash_module`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.lib.stride_tricks import as_strided

try:  # CPython's built-in MD5 skips OpenSSL's per-call set-up: ~1.6x faster on short strings
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover
    _md5 = hashlib.md5

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_BIG = np.int32(2**31 - 1)  # padding id, sorts after every real id
_BAR, _QUOTE, _COMMA, _SPACE = ord("|"), ord("'"), ord(","), ord(" ")


_HEX_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)  # byte -> 2 chars


def _to_hex(digests: np.ndarray) -> np.ndarray:
    """uint8 [m, 16] digests -> uint8 [m, 32] lowercase hex characters."""
    return _HEX_PAIRS[digests].reshape(len(digests), 32)


def _rank(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids in hex-string order for digests [m, 16] (repeats allowed); returns (ids, hex table)."""
    hi = digests[:, :8].copy().view(">u8").ravel().astype(np.uint64)
    lo = digests[:, 8:].copy().view(">u8").ravel().astype(np.uint64)
    order = np.argsort(hi)
    sorted_hi = hi[order]
    new = np.empty(len(hi), bool)
    new[:1] = True
    np.not_equal(sorted_hi[1:], sorted_hi[:-1], out=new[1:])
    ids = np.empty(len(hi), np.int32)
    ids[order] = np.cumsum(new, dtype=np.int32) - 1
    first = order[new]
    if not np.array_equal(lo[first][ids], lo):  # two digests share 64 bits: order by all 128
        _, first, ids = np.unique(np.stack([hi, lo], 1), axis=0, return_index=True, return_inverse=True)
        ids = ids.ravel().astype(np.int32)
    return ids, _to_hex(digests[first])


def _md5_all(buf: np.ndarray) -> np.ndarray:
    """MD5 digest of each row of a uint8 [m, L] array -> uint8 [m, 16]."""
    m, length = buf.shape
    if m == 0:
        return np.empty((0, 16), np.uint8)
    data = buf.tobytes()
    joined = b"".join([_md5(data[i:i + length]).digest() for i in range(0, m * length, length)])
    return np.frombuffer(joined, np.uint8).reshape(m, 16)


def hash_graphs(adjacency: np.ndarray, labels: np.ndarray) -> list[str]:
    """Official hashes of G graphs with n vertices each: adjacency [G, n, n] 0/1, labels [G, n] ints."""
    adj = np.asarray(adjacency).astype(bool)
    lab = np.asarray(labels).astype(np.int64)
    g, n = lab.shape
    if g == 0:
        return []
    # round 0: md5(str((out, in, label))) for each distinct triple
    code = ((adj.sum(2) * 8 + adj.sum(1)) * 8 + (lab + 2)).ravel()  # (out, in, label) as one small int
    uniq, inverse = np.unique(code, return_inverse=True)
    texts = [str((int(c) // 64, int(c) // 8 % 8, int(c) % 8 - 2)).encode() for c in uniq]
    ids, table = _rank(np.frombuffer(b"".join(_md5(t).digest() for t in texts), np.uint8).reshape(-1, 16))
    flat_vid = ids[inverse.ravel()]
    adj_in = adj.transpose(0, 2, 1).reshape(g * n, n)  # adj_in[g*n + v, w] = edge w -> v
    adj_out = adj.reshape(g * n, n)
    graph_of = np.repeat(np.arange(g), n)
    count, rep = len(table), None
    for _ in range(n):
        # once the partition stops splitting, one vertex per label is enough: relabel through it
        sub = slice(None) if rep is None else rep
        nb = flat_vid.reshape(g, n)[graph_of[sub]]
        ins = np.sort(np.where(adj_in[sub], nb, _BIG), axis=1)
        outs = np.sort(np.where(adj_out[sub], nb, _BIG), axis=1)
        rows = np.concatenate([ins, outs, flat_vid[sub, None]], axis=1)
        if count < 255:  # few labels (the first round): hash each distinct row once
            small = np.where(rows == _BIG, 255, rows).astype(np.uint8)
            _, first, inverse = np.unique(small.view(f"V{small.shape[1]}").ravel(), return_index=True,
                                          return_inverse=True)
            digests = _round_digests(rows[first], table, n)[inverse.ravel()]
        else:
            digests = _round_digests(rows, table, n)
        ids, table = _rank(digests)
        if rep is None:
            flat_vid = ids
            if len(table) == count:  # refinement only splits: an equal count is a stable partition
                rep = np.empty(len(table), np.int64)
                rep[flat_vid] = np.arange(g * n)
        else:
            flat_vid = ids[flat_vid]
            moved = np.empty_like(rep)
            moved[ids] = rep  # row j (old label j) now carries label ids[j]
            rep = moved
        count = len(table)
    vid = flat_vid.reshape(g, n)
    # final: md5(str(sorted(hex labels))), i.e. "['h1', 'h2', ...]"
    ordered = np.sort(vid, axis=1)
    width = 2 + 32 * n + 4 * (n - 1) + 2
    buf = np.empty((g, width), np.uint8)
    buf[:, 0], buf[:, 1], buf[:, -2], buf[:, -1] = ord("["), _QUOTE, _QUOTE, ord("]")
    for k in range(n):
        start = 2 + 36 * k
        buf[:, start:start + 32] = table[ordered[:, k]]
        if k < n - 1:
            buf[:, start + 32:start + 36] = (_QUOTE, _COMMA, _SPACE, _QUOTE)
    hexes = _to_hex(_md5_all(buf)).view("S32").ravel()
    return [h.decode() for h in hexes]


def _round_digests(rows: np.ndarray, table: np.ndarray, n: int) -> np.ndarray:
    """MD5 of 'in-labels|out-labels|own' for each row (grouped by in/out degree: fixed widths)."""
    n_in = (rows[:, :n] != _BIG).sum(1)
    n_out = (rows[:, n:2 * n] != _BIG).sum(1)
    digests = np.empty((len(rows), 16), np.uint8)
    group = (n_in * (n + 1) + n_out).astype(np.uint8)
    order = np.argsort(group, kind="stable")  # radix sort on uint8
    ordered = group[order]
    starts = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    for key, lo, hi in zip(ordered[starts], starts, list(starts[1:]) + [len(order)]):
        idx = order[lo:hi]
        a, b = divmod(int(key), n + 1)
        sub = rows[idx]
        m, width = len(idx), 32 * (a + b + 1) + 2
        buf = np.empty((m, width), np.uint8)
        # gather the hex strings straight into their places in each row (no temporaries)
        np.take(table, sub[:, :a], axis=0, mode="clip",
                out=as_strided(buf, shape=(m, a, 32), strides=(width, 32, 1)))
        buf[:, 32 * a] = _BAR
        np.take(table, sub[:, n:n + b], axis=0, mode="clip",
                out=as_strided(buf[:, 32 * a + 1:], shape=(m, b, 32), strides=(width, 32, 1)))
        buf[:, 32 * (a + b) + 1] = _BAR
        np.take(table, sub[:, 2 * n], axis=0, mode="clip", out=buf[:, -32:])
        digests[idx] = _md5_all(buf)
    return digests
