"""The dependency analysis: which filters are coupled (one bit of the genome per coupled channel group)."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from searchlab.errors import ConfigError


# Modules and functions that treat channels independently (output channel i depends on input channel i).
_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
                 nn.Hardtanh, nn.Hardsigmoid, nn.Mish, nn.Dropout, nn.Dropout2d, nn.Identity, nn.MaxPool2d,
                 nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
_PASS_FUNCS = {F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, F.hardtanh, F.sigmoid,
               F.dropout, F.dropout2d, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
               F.adaptive_max_pool2d, F.interpolate, torch.relu, torch.sigmoid, torch.tanh, torch.clamp,
               torch.abs, torch.neg, torch.exp}
_PASS_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "float", "to", "clamp", "abs",
                 "neg", "exp", "detach"}
_BINARY = {operator.add, operator.iadd, operator.sub, operator.mul, operator.imul, torch.add, torch.sub,
           torch.mul, "add", "add_", "sub", "mul", "mul_"}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
_SHAPE_METHODS = {"flatten", "view", "reshape"}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.frozen: list[bool] = []

    def new(self, frozen: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.frozen.append(frozen)
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.frozen[ra] = self.frozen[ra] or self.frozen[rb]

    def freeze(self, a: int) -> None:
        self.frozen[self.find(a)] = True

    def is_frozen(self, a: int) -> bool:
        return self.frozen[self.find(a)]


@dataclass
class _Value:
    """Channel labels of one tensor: dim 1 has len(labels) * rep entries, channel-major (rep > 1 after flatten)."""

    labels: list[int]
    rep: int = 1


@dataclass
class ModuleUse:
    """How one module sees channels: labels of its input channels and (dense convs) of its filters."""

    name: str
    kind: str  # "conv", "depthwise", "bn", "linear", "fixed"
    in_labels: list[int] = field(default_factory=list)
    in_rep: int = 1
    out_labels: list[int] = field(default_factory=list)
    out_hw: int = 0  # output spatial size (convs), for FLOPs


@dataclass
class PruningPlan:
    """The result of the dependency analysis: genome bits, the filters behind each bit, per-layer bits."""

    uses: dict[str, ModuleUse]
    convs: list[str]                      # every Conv2d, in execution order
    layers: list[str]                     # convs with at least one prunable filter
    groups: list[list[tuple[str, int]]]   # bit -> [(conv name, filter index)]
    label_bit: dict[int, int]             # union-find root -> bit
    layer_bits: dict[str, list[int]]      # conv -> bit of each of its filters (-1: always kept)
    fixed_flops: float                    # FLOPs of ops that no mask changes
    fixed_params: int                     # parameters of modules that no mask changes

    @property
    def n_bits(self) -> int:
        return len(self.groups)


def _shape(node) -> torch.Size | None:
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


def trace_channels(model: nn.Module, example_input: torch.Tensor, layers: list[str] | None = None) -> PruningPlan:
    """Trace `model` and find which filters must be pruned together; `layers` limits the prunable convs.
    (`cost.analyse` adds the FLOPs of what no mask changes.)

    `layers` None (default) means every convolution except those whose filters reach the network's
    output unchanged (the last layer); a group of coupled filters is prunable only when every
    convolution in it is selected.
    """
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    model = model.eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any trace failure is the model's structure
        raise ConfigError(f"the model cannot be traced by torch.fx ({str(exc).splitlines()[0][:160]}); "
                          "write its forward without data-dependent control flow") from None
    with torch.no_grad():
        ShapeProp(gm).propagate(example_input)
    modules = dict(gm.named_modules())
    uf = _UnionFind()
    values: dict[str, _Value | None] = {}
    uses: dict[str, ModuleUse] = {}
    convs: list[str] = []

    def fresh(n: int, frozen: bool = True) -> list[int]:
        return [uf.new(frozen) for _ in range(n)]

    def freeze(v: _Value | None) -> None:
        if v is not None:
            for lab in v.labels:
                uf.freeze(lab)

    def tensor_args(node) -> list[_Value | None]:
        out = []
        for a in list(node.args) + list(node.kwargs.values()):
            if isinstance(a, fx.Node):
                out.append(values.get(a.name))
            elif isinstance(a, (list, tuple)):
                out.extend(values.get(x.name) for x in a if isinstance(x, fx.Node))
        return out

    def opaque(node) -> _Value | None:
        for v in tensor_args(node):
            freeze(v)
        shape = _shape(node)
        return _Value(fresh(shape[1])) if shape is not None and len(shape) >= 2 else None

    def channels_of(node) -> int | None:
        shape = _shape(node)
        return shape[1] if shape is not None and len(shape) >= 2 else None

    def merge(a: _Value, b: _Value) -> _Value:
        for x, y in zip(a.labels, b.labels):
            uf.union(x, y)
        return _Value(list(a.labels), a.rep)

    def reshape_value(v: _Value, src, node) -> _Value | None:
        """flatten/view/reshape: same channel layout, or [N,C,H,W] -> [N, C*H*W]."""
        s_in, s_out = _shape(src), _shape(node)
        if s_in is None or s_out is None:
            return None
        if tuple(s_in[:2]) == tuple(s_out[:2]) and len(s_out) == 2 and math.prod(s_in[2:]) == 1:
            return _Value(v.labels, v.rep)
        if len(s_out) == 2 and s_out[0] == s_in[0] and v.rep == 1 and s_out[1] == math.prod(s_in[1:]):
            return _Value(v.labels, math.prod(s_in[2:]))
        if tuple(s_in) == tuple(s_out):
            return v
        return None

    for node in gm.graph.nodes:
        result: _Value | None = None
        if node.op == "placeholder":
            c = channels_of(node)
            result = _Value(fresh(c)) if c else None
        elif node.op == "get_attr":
            result = None
        elif node.op == "output":
            for v in tensor_args(node):
                freeze(v)
            continue
        elif node.op == "call_module":
            mod = modules[node.target]
            src = values.get(node.args[0].name) if node.args and isinstance(node.args[0], fx.Node) else None
            name = str(node.target)
            if isinstance(mod, nn.Conv2d) and src is not None and src.rep == 1:
                if name not in convs:
                    convs.append(name)
                shape = _shape(node)
                hw = math.prod(shape[2:]) if shape is not None else 0
                if mod.groups == 1:
                    use = uses.get(name)
                    if use is None:
                        uses[name] = ModuleUse(name, "conv", list(src.labels), 1, fresh(mod.out_channels, False),
                                               hw)
                    else:
                        merge(_Value(use.in_labels), src)
                    result = _Value(list(uses[name].out_labels))
                elif mod.groups == mod.in_channels == mod.out_channels:
                    use = uses.get(name)
                    if use is None:
                        uses[name] = ModuleUse(name, "depthwise", list(src.labels), 1, list(src.labels), hw)
                    else:
                        merge(_Value(use.in_labels), src)
                    result = _Value(list(uses[name].in_labels))
                else:  # grouped convolution with several channels per group: keep it whole
                    freeze(src)
                    uses[name] = ModuleUse(name, "fixed")
                    result = _Value(fresh(mod.out_channels))
            elif isinstance(mod, nn.BatchNorm2d) and src is not None and src.rep == 1:
                if name in uses:
                    merge(_Value(uses[name].in_labels), src)
                else:
                    uses[name] = ModuleUse(name, "bn", list(src.labels))
                result = src
            elif isinstance(mod, nn.Linear) and src is not None and len(_shape(node.args[0]) or ()) == 2:
                if name in uses:
                    merge(_Value(uses[name].in_labels), src)
                else:
                    uses[name] = ModuleUse(name, "linear", list(src.labels), src.rep)
                result = _Value(fresh(mod.out_features))
            elif isinstance(mod, _PASS_MODULES) and src is not None and channels_of(node) == channels_of(
                    node.args[0]):
                result = src
            elif isinstance(mod, nn.Flatten) and src is not None:
                result = reshape_value(src, node.args[0], node)
                if result is None:
                    result = opaque(node)
            else:
                if any(True for _ in mod.parameters(recurse=False)) or list(mod.parameters()):
                    uses.setdefault(name, ModuleUse(name, "fixed"))
                result = opaque(node)
        else:  # call_function / call_method
            target = node.target
            first = node.args[0] if node.args else None
            src = values.get(first.name) if isinstance(first, fx.Node) else None
            if target in _BINARY:
                ops = [values.get(a.name) for a in node.args[:2] if isinstance(a, fx.Node)]
                if len(ops) == 2 and all(ops) and len(ops[0].labels) == len(ops[1].labels) \
                        and ops[0].rep == ops[1].rep:
                    result = merge(ops[0], ops[1])
                elif len(ops) == 1 and ops[0] is not None:
                    result = ops[0]
                else:
                    result = opaque(node)
            elif target in (torch.cat, torch.concat):
                parts = node.args[0]
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
                vals = [values.get(p.name) for p in parts]
                if dim in (1, -3) and all(v is not None and v.rep == 1 for v in vals) and len(
                        _shape(node) or ()) == 4:
                    result = _Value([lab for v in vals for lab in v.labels])
                else:
                    result = opaque(node)
            elif target is operator.getitem and src is not None:
                idx = node.args[1]
                idx = idx if isinstance(idx, tuple) else (idx,)
                if len(idx) >= 2 and idx[0] == slice(None) and idx[1] == slice(None) and src.rep == 1 and all(
                        isinstance(i, slice) or i is Ellipsis for i in idx):
                    result = src  # spatial slicing only (a channel slice has fixed indices: it freezes)
                elif idx == (slice(None),) or idx == (slice(None), Ellipsis):
                    result = src
                else:
                    result = opaque(node)
            elif target is F.pad and src is not None and src.rep == 1:
                pad = list(node.args[1] if len(node.args) > 1 else node.kwargs.get("pad"))
                n_spatial = len(_shape(node)) - 2
                if len(pad) <= 2 * n_spatial:
                    result = src
                elif len(pad) == 2 * n_spatial + 2:
                    before, after = pad[2 * n_spatial], pad[2 * n_spatial + 1]
                    if before < 0 or after < 0:
                        result = opaque(node)
                    else:  # zero channels are frozen: nothing joined to them can be removed
                        result = _Value(fresh(before) + list(src.labels) + fresh(after))
                else:
                    result = opaque(node)
            elif src is not None and (target in _PASS_FUNCS or (node.op == "call_method" and target in _PASS_METHODS)):
                result = src if channels_of(node) == channels_of(first) else opaque(node)
            elif src is not None and (target is torch.flatten or (node.op == "call_method" and target in _SHAPE_METHODS)):
                result = reshape_value(src, first, node) or opaque(node)
            elif src is not None and ((node.op == "call_method" and target in _REDUCE_METHODS) or target in (
                    torch.mean, torch.sum, torch.amax)):
                s_in, s_out = _shape(first), _shape(node)
                if s_in is not None and s_out is not None and src.rep == 1 and len(s_out) >= 2 and \
                        tuple(s_out[:2]) == tuple(s_in[:2]):
                    result = src
                else:
                    result = opaque(node)
            elif node.op == "call_method" and target in ("size", "dim"):
                result = None
            else:
                result = opaque(node)
        values[node.name] = result

    # Modules with parameters that the trace never called through a known path stay as they are.
    for name, mod in model.named_modules():
        if name and name not in uses and any(True for _ in mod.parameters(recurse=False)):
            uses[name] = ModuleUse(name, "fixed")
    dense = [c for c in convs if uses.get(c) is not None and uses[c].kind == "conv"]
    if layers is None:
        selected = set(dense)
    else:
        missing = [n for n in layers if n not in modules or not isinstance(modules[n], nn.Conv2d)]
        if missing:
            raise ConfigError(f"layer {missing[0]!r} is not a convolution of the model; its convolutions are: "
                              f"{', '.join(convs) or 'none'}")
        selected = set(layers)

    members: dict[int, list[tuple[str, int]]] = {}
    for c in dense:
        for i, lab in enumerate(uses[c].out_labels):
            members.setdefault(uf.find(lab), []).append((c, i))
    label_bit: dict[int, int] = {}
    groups: list[list[tuple[str, int]]] = []
    for c in dense:  # bits in execution order of their first filter
        for lab in uses[c].out_labels:
            root = uf.find(lab)
            if root in label_bit or uf.frozen[root]:
                continue
            if all(conv in selected for conv, _ in members[root]):
                label_bit[root] = len(groups)
                groups.append(members[root])
    layer_bits = {c: [label_bit.get(uf.find(lab), -1) for lab in uses[c].out_labels] for c in dense}
    pruned_layers = [c for c in dense if any(b >= 0 for b in layer_bits[c])]
    plan = PruningPlan(uses=uses, convs=convs, layers=pruned_layers, groups=groups, label_bit=label_bit,
                       layer_bits=layer_bits, fixed_flops=0.0, fixed_params=0)
    plan._uf = uf  # type: ignore[attr-defined]
    plan._gm = gm  # type: ignore[attr-defined]
    plan._deps = _bit_dependencies(gm, modules, uses, values, uf, label_bit)  # type: ignore[attr-defined]
    plan.fixed_params = sum(p.numel() for n, m in model.named_modules() if uses.get(n) is None
                            or uses[n].kind == "fixed" for p in m.parameters(recurse=False))
    return plan


def _bit_dependencies(gm, modules, uses, values, uf, label_bit) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
    """The first layers' nodes, each with the few genome bits its full-width value depends on.

    The input depends on no bit; a dense convolution depends on its input's bits plus the bits of
    the input channels it reads (a removed channel contributes nothing, whatever other bits say);
    BatchNorm, activations and pooling depend on what their input depends on. Nodes reached any
    other way are left out. Returns ({node: sorted bits}, {node: bit of each of its channels, -1 =
    always kept}): a node depending on bits B has one full-width value per setting of B, which a
    mask then narrows to its kept channels, so it can be computed once per setting and reused.
    """
    import torch.fx as fx

    deps: dict[str, tuple[int, ...]] = {}
    for node in gm.graph.nodes:
        args = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
        if node.op == "placeholder":
            if values.get(node.name) is not None:
                deps[node.name] = ()
            continue
        if len(args) != 1 or args[0].name not in deps or values.get(node.name) is None:
            continue
        upstream = deps[args[0].name]
        if node.op == "call_module":
            mod = modules[node.target]
            use = uses.get(str(node.target))
            if isinstance(mod, nn.Conv2d) and use is not None and use.kind == "conv":
                read = {label_bit.get(uf.find(lab)) for lab in use.in_labels} - {None}
                deps[node.name] = tuple(sorted(set(upstream) | read))
            elif isinstance(mod, (nn.BatchNorm2d,) + _PASS_MODULES):
                deps[node.name] = upstream
        elif node.target in _PASS_FUNCS or (node.op == "call_method" and node.target in _PASS_METHODS):
            deps[node.name] = upstream
    channel_bits = {name: np.array([label_bit.get(uf.find(lab), -1) for lab in values[name].labels], dtype=np.int64)
                    for name in deps}
    return deps, channel_bits


def kept_channels(plan: PruningPlan, labels: list[int], bits: np.ndarray) -> np.ndarray:
    """Which of these channels a mask keeps (True) — a label outside every bit is always kept."""
    uf: _UnionFind = plan._uf  # type: ignore[attr-defined]
    out = np.ones(len(labels), dtype=bool)
    for i, lab in enumerate(labels):
        b = plan.label_bit.get(uf.find(lab))
        if b is not None:
            out[i] = bool(bits[b])
    return out
