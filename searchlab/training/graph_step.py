"""The training step replayed as one CUDA graph, where the step allows it.

At a moderate batch a small network leaves the GPU waiting for the host to launch the few hundred
kernels of each step (forward, backward, optimizer). Captured once as a CUDA graph, the whole step is
launched by one call. A capture records fixed memory addresses and launches, so:

- each batch is copied into static buffers; a batch of another shape or type runs eagerly;
- the learning rate lives in a tensor on the device that is filled before every step (SGD fused,
  Adam/AdamW capturable: both read it there instead of baking a number into the capture);
- the first `WARMUP` steps run eagerly on a side stream (momentum buffers, Adam moments and cuDNN
  workspaces are allocated lazily, which a capture must not do), then the next step is captured;
- autocast's weight cache is off inside the capture (a cached cast would be a stale tensor).

`graph_plan` decides, before training, whether a run can be captured; a capture that fails anyway (a
model that reads a tensor's value on the host, say) is given up and the run goes on eagerly.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

WARMUP = 3  # eager steps before the capture (the count torch's own whole-network example uses)
GRAPH_MODES = ("auto", "off", "eager")


def lr_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of step `s` (0-based): cosine to 0, constant, x0.1 at 50% and 75% of
    the steps, or one cycle (linear warm-up over the first 15% of the steps, then linear decay to 0)."""
    total = max(1, total_steps)
    if schedule == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    if schedule == "step":
        return lambda s: 0.1 ** ((s >= total // 2) + (s >= (3 * total) // 4))
    if schedule == "onecycle":
        warm = max(1, round(0.15 * total))
        return lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / (total - warm + 1))
    return lambda s: 1.0


def has_hooks(model: nn.Module) -> bool:
    """Whether any hook could run during the step: module hooks (global or on the model), or tensor
    hooks on a parameter. A hook is Python run at launch time; a replay would skip it."""
    from torch.nn.modules import module as m

    if (m._global_forward_hooks or m._global_forward_pre_hooks or m._global_backward_hooks
            or m._global_backward_pre_hooks):
        return True
    for mod in model.modules():
        if mod._forward_hooks or mod._forward_pre_hooks or mod._backward_hooks or mod._backward_pre_hooks:
            return True
    return any(getattr(p, "_backward_hooks", None) or getattr(p, "_post_accumulate_grad_hooks", None)
               for p in model.parameters())


def graph_plan(model: nn.Module, *, mode: str, device: torch.device, compiled: bool, grad_scaling: bool,
               total_steps: int) -> str:
    """'' when the run's steps can be captured as a CUDA graph, else why they run eagerly."""
    if mode != "auto":
        return "CUDA graphs off" if mode == "off" else "the capturable step run eagerly (cuda_graph 'eager')"
    if device.type != "cuda":
        return f"not a CUDA device ({device.type})"
    if compiled:
        return "torch.compile"
    if grad_scaling:
        return "fp16 gradient scaling (the scaler decides on the host whether to skip a step)"
    if has_hooks(model):
        return "the model has hooks"
    if total_steps <= WARMUP + 1:
        return f"{total_steps} steps (a capture pays off after {WARMUP + 1} eager ones)"
    return ""


def probe_optimizer(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], device: torch.device) -> str:
    """'' when the capturable optimizer (`make(params)`) steps on this torch and device, else why not: a
    torch without a tensor learning rate for it then trains eagerly rather than failing every candidate."""
    try:
        param = nn.Parameter(torch.zeros(2, device=device))
        param.grad = torch.ones(2, device=device)
        optimizer = make([param])
        optimizer.step()
        optimizer.step()
        return ""
    except Exception as exc:  # noqa: BLE001 - the plain loop is the fallback
        return f"the capturable optimizer fails here ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def same_layout(batch: Any, static: list[torch.Tensor]) -> bool:
    """Whether `batch` (a tuple or list of tensors) can be copied into the static buffers."""
    return (isinstance(batch, (tuple, list)) and len(batch) == len(static)
            and all(isinstance(t, torch.Tensor) and t.shape == s.shape and t.dtype == s.dtype and t.device == s.device
                    for t, s in zip(batch, static)))


class GraphedStep:
    """One training step (forward, backward, clip, optimizer) with its own capturable optimizer.

    With `why_eager` empty (CUDA) it warms up, captures and replays; otherwise it runs the very same
    step eagerly, which is what a capture is checked against. `reason` says why steps run eagerly (''
    while they are, or will be, replayed)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], optimizer,
                 *, lr: float, factor: Callable[[int], float], grad_clip: float, autocast, why_eager: str) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.lr_tensor = optimizer.param_groups[0]["lr"]
        self.base_lr, self.factor, self.grad_clip, self.autocast = lr, factor, grad_clip, autocast
        self.capture = not why_eager
        self.reason = why_eager
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[torch.Tensor] = []
        self.loss: torch.Tensor | None = None
        self.replays = 0

    def __call__(self, batch: Any, step: int) -> torch.Tensor:
        self.lr_tensor.fill_(self.base_lr * self.factor(step))
        if self.graph is not None and same_layout(batch, self.static):
            for buffer, tensor in zip(self.static, batch):
                buffer.copy_(tensor, non_blocking=True)
            self.graph.replay()
            self.replays += 1
            return self.loss
        if self.capture and not self.reason and self.graph is None:
            if step >= WARMUP:
                return self._capture(batch)
            return self._on_side_stream(batch)
        return self._eager(batch)

    def _eager(self, batch: Any) -> torch.Tensor:
        with self.autocast(True):
            loss = self.loss_fn(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self._backward_and_step(loss)
        return loss

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()

    def _on_side_stream(self, batch: Any) -> torch.Tensor:
        main = torch.cuda.current_stream(self.lr_tensor.device)
        side = torch.cuda.Stream(self.lr_tensor.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            loss = self._eager(batch)
        main.wait_stream(side)
        return loss

    def _capture(self, batch: Any) -> torch.Tensor:
        if not (isinstance(batch, (tuple, list)) and batch
                and all(isinstance(t, torch.Tensor) and t.device.type == "cuda" for t in batch)):
            self.reason = "batches are not tuples of CUDA tensors"
            return self._eager(batch)
        self.static = [t.clone() for t in batch]  # clone keeps each tensor's strides (channels-last)
        self.optimizer.zero_grad(set_to_none=True)  # backward then allocates the grads inside the graph
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.device(self.lr_tensor.device), torch.cuda.graph(graph):
                with self.autocast(False):
                    loss = self.loss_fn(self.model, tuple(self.static) if isinstance(batch, tuple) else self.static)
                self._backward_and_step(loss)
        except Exception as exc:  # noqa: BLE001 - an uncapturable model trains eagerly instead
            self.reason = f"capture failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            self.static = []
            self.optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize(self.lr_tensor.device)
            return self._eager(batch)
        self.graph, self.loss = graph, loss.detach()
        graph.replay()  # capturing ran nothing: this is the step itself
        self.replays += 1
        return self.loss

    def close(self) -> None:
        """Release the graph and its memory pool (the grads it allocated included)."""
        self.graph, self.static, self.loss = None, [], None
        self.optimizer.zero_grad(set_to_none=True)

    @property
    def status(self) -> str:
        if self.graph is not None or self.replays:
            return f"captured ({self.replays} steps replayed)"
        return self.reason or "not captured"
