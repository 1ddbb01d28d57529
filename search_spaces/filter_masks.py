"""Filter masks of a trained CNN: which convolution filters to keep, one bit per coupled channel group.

Why our own dependency analysis instead of Torch-Pruning: a `torch.fx` trace gives the exact op graph
without a new dependency, and the channel bookkeeping needed here is small. Every tensor in the graph
carries one label per channel (an element of a union-find); a dense convolution creates fresh labels
for its output filters, ops that keep channels apart (BatchNorm, activations, pooling, slicing) pass
labels through, `add`/`mul` join the labels of their operands channel by channel (residual adds),
`cat` concatenates them, depthwise convolutions join their input and output channels, and anything
not understood (an unknown op, the network's output, a zero-padded channel) freezes the labels it
touches. A group of joined labels is one bit of the genome: its filters are kept or removed together.

A mask is evaluated without rebuilding the network by zeroing the matching input columns of every
consumer (dense convolution or Linear): removed channels then contribute nothing, which is exactly
what removing them does, so `prune_model` (physical pruning) gives a smaller module whose outputs
equal the masked network's to float tolerance.
"""

from __future__ import annotations

import copy
import math
import operator
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from searchlab.errors import ConfigError, InvalidArchitecture

Genome = str
"""A string of '0'/'1', one character per prunable channel group (1 = keep)."""

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


def analyse(model: nn.Module, example_input: torch.Tensor, layers: list[str] | None = None) -> PruningPlan:
    """Trace `model` and find which filters must be pruned together; `layers` limits the prunable convs.

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
    total = measured_flops(model, example_input[:1])
    plan.fixed_flops = total - _analytic_flops(model, plan, np.ones(plan.n_bits, dtype=bool))
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


def _keep(plan: PruningPlan, labels: list[int], bits: np.ndarray) -> np.ndarray:
    """Which of these channels a mask keeps (True) — a label outside every bit is always kept."""
    uf: _UnionFind = plan._uf  # type: ignore[attr-defined]
    out = np.ones(len(labels), dtype=bool)
    for i, lab in enumerate(labels):
        b = plan.label_bit.get(uf.find(lab))
        if b is not None:
            out[i] = bool(bits[b])
    return out


def bits_of(genome: Genome) -> np.ndarray:
    return np.frombuffer(genome.encode("ascii"), dtype=np.uint8) == ord("1")


def genome_of(bits) -> Genome:
    return "".join("1" if b else "0" for b in bits)


def measured_flops(model: nn.Module, example_input: torch.Tensor) -> float:
    """FLOPs (2 per multiply-accumulate) of one forward pass, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(example_input)
    return float(counter.get_total_flops())


def _module_sizes(model: nn.Module, plan: PruningPlan, bits: np.ndarray):
    """(name, module, kind, kept inputs, kept outputs) for every analysed module under a mask."""
    modules = dict(model.named_modules())
    for name, use in plan.uses.items():
        if use.kind == "fixed":
            continue
        mod = modules[name]
        k_in = int(_keep(plan, use.in_labels, bits).sum()) * use.in_rep
        if use.kind == "conv":
            k_out = int(_keep(plan, use.out_labels, bits).sum())
        elif use.kind == "linear":
            k_out = mod.out_features
        else:
            k_out = k_in
        yield name, mod, use, k_in, k_out


def _analytic_flops(model: nn.Module, plan: PruningPlan, bits: np.ndarray) -> float:
    total = 0.0
    for _, mod, use, k_in, k_out in _module_sizes(model, plan, bits):
        if use.kind == "conv":
            total += 2.0 * k_out * k_in * math.prod(mod.kernel_size) * use.out_hw
        elif use.kind == "depthwise":
            total += 2.0 * k_out * math.prod(mod.kernel_size) * use.out_hw
        elif use.kind == "linear":
            total += 2.0 * k_out * k_in
    return total


def cost(model: nn.Module, plan: PruningPlan, genome: Genome) -> dict[str, float]:
    """Parameters and FLOPs (per image) of the network a mask leaves, computed without building it."""
    bits = bits_of(genome)
    params = plan.fixed_params
    for _, mod, use, k_in, k_out in _module_sizes(model, plan, bits):
        bias = getattr(mod, "bias", None)
        if use.kind == "conv":
            params += k_out * k_in * math.prod(mod.kernel_size) + (k_out if bias is not None else 0)
        elif use.kind == "depthwise":
            params += k_out * math.prod(mod.kernel_size) + (k_out if bias is not None else 0)
        elif use.kind == "bn":
            params += 2 * k_in if mod.affine else 0
        elif use.kind == "linear":
            params += k_out * k_in + (k_out if bias is not None else 0)
    return {"params": float(params), "flops": plan.fixed_flops + _analytic_flops(model, plan, bits)}


def _sizes_pruned_bn(mod: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = copy.deepcopy(mod)
    new.num_features = int(keep.numel())
    for pname in ("weight", "bias"):
        p = getattr(mod, pname)
        if p is not None:
            setattr(new, pname, nn.Parameter(p.detach()[keep].clone(), requires_grad=p.requires_grad))
    for bname in ("running_mean", "running_var"):
        b = getattr(mod, bname)
        if b is not None:
            setattr(new, bname, b[keep].clone())
    return new


def prune_model(model: nn.Module, plan: PruningPlan, genome: Genome) -> nn.Module:
    """A copy of `model` with the removed filters (and the input channels that read them) cut out."""
    bits = bits_of(genome)
    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    for name, use in plan.uses.items():
        if use.kind == "fixed":
            continue
        mod = modules[name]
        keep_in = torch.from_numpy(np.repeat(_keep(plan, use.in_labels, bits), use.in_rep)).nonzero().flatten()
        if use.kind == "conv":
            keep_out = torch.from_numpy(_keep(plan, use.out_labels, bits)).nonzero().flatten()
            w = mod.weight.detach()[keep_out][:, keep_in].clone()
            mod.weight = nn.Parameter(w, requires_grad=mod.weight.requires_grad)
            if mod.bias is not None:
                mod.bias = nn.Parameter(mod.bias.detach()[keep_out].clone(), requires_grad=mod.bias.requires_grad)
            mod.in_channels, mod.out_channels = int(keep_in.numel()), int(keep_out.numel())
        elif use.kind == "depthwise":
            mod.weight = nn.Parameter(mod.weight.detach()[keep_in].clone(), requires_grad=mod.weight.requires_grad)
            if mod.bias is not None:
                mod.bias = nn.Parameter(mod.bias.detach()[keep_in].clone(), requires_grad=mod.bias.requires_grad)
            mod.in_channels = mod.out_channels = mod.groups = int(keep_in.numel())
        elif use.kind == "bn":
            parent_name, _, attr = name.rpartition(".")
            setattr(modules[parent_name] if parent_name else pruned, attr, _sizes_pruned_bn(mod, keep_in))
        elif use.kind == "linear":
            mod.weight = nn.Parameter(mod.weight.detach()[:, keep_in].clone(), requires_grad=mod.weight.requires_grad)
            mod.in_features = int(keep_in.numel())
    return pruned


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

    def _keep(self, bits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return bits[idx]  # index -1 picks the appended True: channels outside every bit are kept

    def masked_weights(self, genome: Genome) -> dict[str, torch.Tensor]:
        """The tensors to swap into the original modules for this mask (see the class docstring)."""
        bits = torch.from_numpy(np.append(bits_of(genome), True)).to(self._device)
        t, out = self._tensors, {}
        for name, kind, in_idx, out_idx in self._index:
            keep_in = self._keep(bits, in_idx)
            if self.mode == "zero":
                if kind in ("conv", "linear") and not bool(keep_in.all()):
                    w = t[f"{name}.weight"]
                    out[f"{name}.weight"] = _zero_input_columns(w, keep_in)
                continue
            if kind == "conv":
                keep_out = self._keep(bits, out_idx)
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


@dataclass
class FilterMaskSpace:
    """Binary masks over the prunable filter groups of a trained network (1 = keep the filter)."""

    model: nn.Module
    plan: PruningPlan
    name: str = "prune"

    def __post_init__(self) -> None:
        if self.plan.n_bits == 0:
            raise ConfigError("the model has no prunable filters with these layers; pass --layers with the names "
                              f"of convolutions to prune (convolutions: {', '.join(self.plan.convs) or 'none'})")
        self._layer_sets = [np.array(sorted({b for b in bits if b >= 0})) for c, bits in self.plan.layer_bits.items()
                            if bits and all(b >= 0 for b in bits)]
        self._full_cost = cost(self.model, self.plan, "1" * self.plan.n_bits)

    @property
    def n_bits(self) -> int:
        return self.plan.n_bits

    def repair(self, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Turn on one random filter in every layer that lost all of its filters."""
        bits = np.asarray(bits, dtype=bool).copy()
        for layer in self._layer_sets:
            if not bits[layer].any():
                bits[rng.choice(layer)] = True
        return bits

    def sample(self, rng: np.random.Generator) -> Genome:
        rate = rng.uniform(0.3, 1.0)
        return genome_of(self.repair(rng.random(self.n_bits) < rate, rng))

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        bits = bits_of(self.validate(genome)).copy()
        flip = rng.random(self.n_bits) < 1.0 / self.n_bits
        if not flip.any():
            flip[rng.integers(self.n_bits)] = True
        return genome_of(self.repair(bits ^ flip, rng))

    def validate(self, genome: Genome) -> Genome:
        if not isinstance(genome, str) or len(genome) != self.n_bits or set(genome) - {"0", "1"}:
            raise InvalidArchitecture(f"a mask must be a string of {self.n_bits} '0'/'1' characters")
        bits = bits_of(genome)
        for layer in self._layer_sets:
            if not bits[layer].any():
                raise InvalidArchitecture("a mask must keep at least one filter in every layer")
        return genome

    def key(self, genome: Genome) -> str:
        return self.validate(genome)

    def kept_per_layer(self, genome: Genome) -> dict[str, list[int]]:
        """conv name -> [kept filters, original filters], for every dense convolution."""
        bits = np.append(bits_of(genome), True)
        return {c: [int(bits[np.array(b)].sum()), len(b)] for c, b in self.plan.layer_bits.items()}

    def describe(self, genome: Genome) -> dict:
        c = cost(self.model, self.plan, self.validate(genome))
        bits = bits_of(genome)
        return {"params": c["params"], "flops": c["flops"], "kept_bits": int(bits.sum()), "bits": self.n_bits,
                "flops_ratio": self._full_cost["flops"] / c["flops"], "params_ratio": self._full_cost["params"] / c["params"],
                "kept_per_layer": self.kept_per_layer(genome)}

    @property
    def full_cost(self) -> dict[str, float]:
        return dict(self._full_cost)
