"""Masked execution: score a mask on the full network without rebuilding it, memoising the prefix."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

from searchlab.search_spaces.filter_masks.analysis import PruningPlan, _UnionFind
from searchlab.search_spaces.filter_masks.encoding import Genome, bits_of


class MaskedNetwork:
    """Evaluates a mask on the original network without building a new module.

    mode "zero" zeroes the input columns of every layer that reads a removed channel (the network
    keeps its size); mode "slice" (default when the network has no depthwise convolution, whose
    group count would change) swaps in sliced weights and BatchNorm statistics, so the original
    modules compute exactly what the pruned network computes, at its smaller cost.

    The first layers are not run again for every mask. A node whose full-width value depends on at
    most `memo_bits` genome bits (`_bit_dependencies`) is computed once per input tensor and setting
    of those bits, kept in a least-recently-used store of at most `memo_mib` MiB, and narrowed to
    the mask's kept channels. In LeNet-5, conv1 and its pooling depend on no bit (computed once);
    conv2 and its pooling depend only on conv1's 6 bits, so a whole search runs them at most 63
    times however many masks it scores. `memo_bits=0` keeps only the mask-free layers.
    """

    def __init__(self, model: nn.Module, plan: PruningPlan, mode: str = "auto", memo_bits: int = 8,
                 memo_mib: float = 512.0) -> None:
        if mode not in ("auto", "zero", "slice"):
            raise ValueError(f"mode must be auto, zero or slice, not {mode!r}")
        has_depthwise = any(u.kind == "depthwise" for u in plan.uses.values())
        if mode == "slice" and has_depthwise:
            raise ValueError("slice mode cannot change the groups of a depthwise convolution; use zero mode")
        self.mode = ("zero" if has_depthwise else "slice") if mode == "auto" else mode
        self.model = model.eval()
        self.plan = plan
        uf: _UnionFind = plan._uf  # type: ignore[attr-defined]

        def bit_index(labels: list[int], rep: int = 1) -> torch.Tensor:
            idx = np.array([plan.label_bit.get(uf.find(lab), -1) for lab in labels], dtype=np.int64)
            return torch.from_numpy(np.repeat(idx, rep))

        # (module name, kind, bit per input channel, bit per output channel); -1 = always kept
        self._index: list[tuple[str, str, torch.Tensor, torch.Tensor | None]] = []
        for name, use in plan.uses.items():
            if use.kind == "fixed":
                continue
            out = bit_index(use.out_labels) if use.kind == "conv" else None
            self._index.append((name, use.kind, bit_index(use.in_labels, use.in_rep), out))

        # the memoised region: its frontier (nodes read from outside it) is what later steps are given
        gm = plan._gm  # type: ignore[attr-defined]
        deps, channel_bits = plan._deps  # type: ignore[attr-defined]
        self._region = {n: d for n, d in deps.items() if len(d) <= memo_bits}
        nodes = list(gm.graph.nodes)
        frontier = [a.name for n in nodes if n.name not in self._region for a in n.all_input_nodes
                    if a.name in self._region]
        self._frontier = {n: torch.from_numpy(channel_bits[n]) for n in dict.fromkeys(frontier)}
        if all(n.op == "placeholder" for n in nodes if n.name in self._region):
            self._frontier = {}  # nothing but the input itself would be kept
        # bit-free nodes read by bit-dependent ones: computed once per input, handed to the memo pass
        self._base = {a.name for n in nodes if self._region.get(n.name) for a in n.all_input_nodes
                      if not self._region[a.name]} | {f for f in self._frontier if not self._region[f]}
        self._memo_skip = {n.name for n in nodes if not self._region.get(n.name)}
        self._base_skip = {n.name for n in nodes if n.name not in self._region or self._region[n.name]}
        self._memo_convs = [(str(n.target), bit_index(plan.uses[str(n.target)].in_labels)) for n in nodes
                            if self._region.get(n.name) and n.op == "call_module"
                            and isinstance(gm.get_submodule(str(n.target)), nn.Conv2d)]
        self._memo_limit = int(memo_mib * 2**20)
        self._rest = _network_after(gm, self._region, list(self._frontier)) if self._frontier else None
        self._rest_tensors = set(self._rest.state_dict()) if self._rest is not None else set()
        self.to(next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu"))

    def to(self, device: torch.device) -> "MaskedNetwork":
        self.model.to(device)
        self._tensors = {n: t.detach() for n, t in list(self.model.named_parameters()) + list(self.model.named_buffers())}
        self._index = [(n, k, i.to(device), None if o is None else o.to(device)) for n, k, i, o in self._index]
        self._frontier = {n: i.to(device) for n, i in self._frontier.items()}
        self._memo_convs = [(n, i.to(device)) for n, i in self._memo_convs]
        self._cache: dict = {}
        self._memo: OrderedDict = OrderedDict()
        self._memo_bytes = 0
        self.memo_passes = 0  # how often the bit-dependent first layers were run
        self._device = torch.device(device)
        return self

    def kept_channels(self, bits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return bits[idx]  # index -1 picks the appended True: channels outside every bit are kept

    def masked_weights(self, genome: Genome) -> dict[str, torch.Tensor]:
        """The tensors to swap into the original modules for this mask (see the class docstring)."""
        bits = torch.from_numpy(np.append(bits_of(genome), True)).to(self._device)
        t, out = self._tensors, {}
        for name, kind, in_idx, out_idx in self._index:
            keep_in = self.kept_channels(bits, in_idx)
            if self.mode == "zero":
                if kind in ("conv", "linear") and not bool(keep_in.all()):
                    w = t[f"{name}.weight"]
                    out[f"{name}.weight"] = _zero_input_columns(w, keep_in)
                continue
            if kind == "conv":
                keep_out = self.kept_channels(bits, out_idx)
                out[f"{name}.weight"] = t[f"{name}.weight"][keep_out][:, keep_in]
                if f"{name}.bias" in t:
                    out[f"{name}.bias"] = t[f"{name}.bias"][keep_out]
            elif kind == "linear":
                out[f"{name}.weight"] = t[f"{name}.weight"][:, keep_in]
            elif kind == "bn":
                for part in ("weight", "bias", "running_mean", "running_var"):
                    if f"{name}.{part}" in t:
                        out[f"{name}.{part}"] = t[f"{name}.{part}"][keep_in]
        return out

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, genome: Genome, cache: bool = True) -> torch.Tensor:
        """The masked network's output. With `cache`, the memoised first layers (see the class
        docstring) are looked up by input tensor (kept by identity) and mask."""
        from torch.func import functional_call

        weights = self.masked_weights(genome)
        if not cache or not self._frontier:
            return functional_call(self.model, weights, (x,), strict=False)
        # the entry holds the input, so its memory cannot be reused by another tensor while cached;
        # the version counter catches in-place changes
        key = (x.data_ptr(), tuple(x.shape), x.stride(), str(x.device))
        entry = self._cache.get(key)
        if entry is None or entry[1] != x._version:
            if len(self._cache) >= 64:
                self._cache.clear()
            entry = (x, x._version, _PrefixRun(self.plan._gm, self._base_skip, {}, self._base).run(x))  # type: ignore[attr-defined]
            self._cache[key] = entry
        np_bits = bits_of(genome)
        bits = torch.from_numpy(np.append(np_bits, True)).to(x.device)
        full = self._frontier_values(key + (x._version,), entry[2], np_bits, bits, x)
        given = {}
        for name, idx in self._frontier.items():
            keep = bits[idx] if self.mode == "slice" else torch.ones_like(idx, dtype=torch.bool)
            given[name] = full[name][:, keep]  # a copy: in-place ops downstream cannot touch the cache
        weights = {k: v for k, v in weights.items() if k in self._rest_tensors}
        return functional_call(self._rest, weights, tuple(given[n] for n in self._frontier), strict=False)

    def _frontier_values(self, x_key: tuple, base: dict, np_bits: np.ndarray, bits: torch.Tensor,
                         x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Full-width values of the frontier nodes for this mask: bit-free ones from `base`, the others
        from the memo, or from one pass over the region when any is missing."""
        out, keys = {}, {}
        for name in self._frontier:
            dep = self._region[name]
            if not dep:
                out[name] = base[name]
                continue
            keys[name] = (x_key, name, np_bits[list(dep)].tobytes())
            hit = self._memo.get(keys[name])
            if hit is not None:
                self._memo.move_to_end(keys[name])
                out[name] = hit
        if len(out) == len(self._frontier):
            return out
        from torch.func import functional_call

        # zero mode inside the region: a removed channel contributes nothing, all nodes stay full width
        weights = {}
        for name, idx in self._memo_convs:
            weights[f"gm.{name}.weight"] = _zero_input_columns(self._tensors[f"{name}.weight"], bits[idx])
        runner = _PrefixRunner(self.plan._gm, self._memo_skip, {n: base[n] for n in self._base}, set(keys))  # type: ignore[attr-defined]
        self.memo_passes += 1
        for name, value in functional_call(runner, weights, (x,), strict=False).items():
            if keys[name] not in self._memo:
                self._memo[keys[name]] = value
                self._memo_bytes += value.numel() * value.element_size()
            out[name] = value
        while self._memo_bytes > self._memo_limit and self._memo:
            _, old = self._memo.popitem(last=False)
            self._memo_bytes -= old.numel() * old.element_size()
        return out


def _zero_input_columns(w: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """A conv or linear weight that reads nothing from the input channels `keep` marks False."""
    return w * keep.to(w.dtype).view(1, -1, *([1] * (w.dim() - 2)))


def _network_after(gm, region: dict, frontier: list[str]):
    """The traced network without the `region` nodes, taking the `frontier` values as its inputs:
    generated code, so a candidate does not pay for running the graph node by node."""
    import torch.fx as fx

    graph, env = fx.Graph(), {}
    for name in frontier:
        env[name] = graph.placeholder(name)
    for node in gm.graph.nodes:
        if node.name not in region:
            env[node.name] = graph.node_copy(node, lambda n: env[n.name])
    return fx.GraphModule(gm, graph)


class _PrefixRun:
    """Runs a traced network node by node: skips `skip` nodes, uses `given` values, returns the values of
    the `record` nodes."""

    def __init__(self, gm, skip: set[str], given: dict[str, torch.Tensor], record: set[str]) -> None:
        import torch.fx as fx

        class Run(fx.Interpreter):
            def run_node(inner, n):  # noqa: N805 - fx's method signature
                if n.name in given:
                    return given[n.name]
                if n.name in skip and n.op != "placeholder":
                    return None
                out = super(Run, inner).run_node(n)
                if n.name in record:
                    recorded[n.name] = out.clone()
                return out

        recorded: dict[str, torch.Tensor] = {}
        self._interp, self._recorded = Run(gm), recorded

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._interp.run(x)
        return dict(self._recorded)


class _PrefixRunner(nn.Module):
    """Wraps the traced network so `functional_call` can swap its weights while `_PrefixRun` drives it."""

    def __init__(self, gm, skip: set[str], given: dict[str, torch.Tensor], record: set[str]) -> None:
        super().__init__()
        self.gm, self._skip, self._given, self._record = gm, skip, given, record

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return _PrefixRun(self.gm, self._skip, self._given, self._record).run(x)
