r"""Compiled training steps: a task's loss and its parameter gradients traced into one graph, then compiled.

``torch.compile`` cannot capture a loss that itself differentiates (a potential's forces are
:math:`-\partial E/\partial x`, and training on them needs the gradient of a gradient). As for compiled
inference (:func:`ponita.models.compile_energy_and_forces`), the function

.. math::
    (\theta, \beta, b) \mapsto \big(L(\theta; b), \; \partial L / \partial \theta\big)

of the parameters :math:`\theta`, buffers :math:`\beta` and the batch's floating-point tensors :math:`b`
is traced with ``make_fx`` (every aten operator of the forward pass, the forces and the backward lands in
one FX graph) and compiled with Inductor. Parameters and buffers are graph inputs, so one trace serves
the whole run while the optimiser changes them.

What the trace fixes is the batch's *structure*: its integer tensors (atomic numbers, ``batch``,
``ptr``, ``edge_index``) and every shape, and so every value computed from them alone. One graph is
compiled per structure seen (a molecule and a batch size: usually one, two with a shorter last batch),
up to :data:`MAX_STRUCTURES`; beyond that the step runs eagerly. Whatever depends on the floating-point
values must not change shape: a graph built from the positions (a radius graph) would be baked into the
trace, so a task replaces it first by one that does not depend on them (:meth:`Task.static_batch`).

The compiled step returns the loss as a tensor whose backward hands the precomputed gradients to the
parameters, so Lightning's ``backward``, gradient clipping, optimiser and EMA run unchanged.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.fx.experimental.proxy_tensor import make_fx
from torch_geometric.data import Batch

from ._task import model_device

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Batch], Tensor]

MAX_STRUCTURES = 4
"""Batch structures compiled per run; further ones run eagerly (each compilation takes tens of seconds)."""


class _PrecomputedGradients(torch.autograd.Function):
    """``loss`` attached to the parameters; backward returns ``grad_output · ∂L/∂θ`` computed in the graph."""

    @staticmethod
    def forward(ctx: Any, loss: Tensor, gradients: tuple[Tensor, ...], *parameters: Tensor) -> Tensor:
        ctx.gradients = gradients
        return loss.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (None, None, *(gradient * grad.to(gradient.dtype) for gradient in ctx.gradients))


class _LossModule(nn.Module):
    """``loss_fn(model, batch)`` as a module, so :func:`torch.func.functional_call` can swap the model's tensors."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Batch) -> Tensor:
        return self.loss_fn(self.model, batch)


def _split(batch: Batch) -> tuple[list[str], list[str]]:
    """The batch's tensor attributes: floating-point ones (graph inputs), the rest (the structure)."""
    inputs, structure = [], []
    for key in sorted(batch.keys()):
        value = batch[key]
        if isinstance(value, Tensor):
            (inputs if value.is_floating_point() else structure).append(key)
    return inputs, structure


class CompiledLoss:
    """``loss_fn(model, batch)`` with its parameter gradients, traced and compiled once per batch structure.

    Args:
        loss_fn: the task's loss; it may differentiate inside (forces), but must not draw random numbers
            (they would be frozen in the trace).
        backend: ``torch.compile`` backend of the traced graph (``"aot_eager"`` checks the trace quickly).

    Example:
        >>> model = nn.Linear(3, 1)
        >>> loss_fn = lambda model, batch: model(batch.pos).square().mean()
        >>> compiled = CompiledLoss(loss_fn, backend="aot_eager")
        >>> batch = Batch(pos=torch.randn(4, 3))
        >>> loss = compiled(model, batch)
        >>> loss.backward()
        >>> expected = torch.autograd.grad(loss_fn(model, batch), model.weight)[0]
        >>> torch.allclose(model.weight.grad, expected)
        True
    """

    def __init__(self, loss_fn: LossFn, backend: str = "inductor") -> None:
        self.loss_fn = loss_fn
        self.backend = backend
        self._graphs: list[tuple[tuple, list[Tensor], Callable]] = []
        self._eager = False
        self._tensors: tuple[nn.Module, list[Tensor], list[Tensor]] | None = None  # the model's, listed once
        self.compile_seconds = 0.0
        """Wall time spent tracing and compiling so far (each new structure's first step, which compiles)."""

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        if self._eager:
            return self.loss_fn(model, batch)
        inputs, structure = _split(batch)
        device = model_device(model).type
        signature = (
            tuple((key, batch[key].dtype, tuple(batch[key].shape)) for key in inputs + structure),
            torch.is_autocast_enabled(device),
            torch.get_autocast_dtype(device),
            model.training,
        )
        values = [batch[key] for key in structure]
        compiling = None
        for known, known_values, graph in self._graphs:
            if known == signature and all(torch.equal(a, b) for a, b in zip(values, known_values)):
                break
        else:
            if len(self._graphs) == MAX_STRUCTURES:
                logger.warning(
                    "The batches have more than %d structures; training continues without compiled steps.",
                    MAX_STRUCTURES,
                )
                self._eager = True
                return self.loss_fn(model, batch)
            compiling = time.perf_counter()
            graph = self._compile(model, batch, inputs)
            self._graphs.append((signature, [value.clone() for value in values], graph))
        if self._tensors is None or self._tensors[0] is not model:
            self._tensors = (model, list(model.parameters()), list(model.buffers()))
        _, parameters, buffers = self._tensors
        loss, gradients = graph([p.detach() for p in parameters], buffers, [batch[key] for key in inputs])
        if compiling is not None:  # torch.compile compiles lazily, in this first call
            self.compile_seconds += time.perf_counter() - compiling
        return _PrecomputedGradients.apply(loss, tuple(gradients), *parameters)

    def _compile(self, model: nn.Module, batch: Batch, inputs: list[str]) -> Callable:
        """Traces and compiles ``(parameters, buffers, float inputs) -> (loss, gradients)`` for ``batch``'s structure."""
        wrapper = _LossModule(model, self.loss_fn)
        parameter_names = ["model." + name for name, _ in model.named_parameters()]
        buffer_names = ["model." + name for name, _ in model.named_buffers()]

        def loss_and_gradients(parameters: list[Tensor], buffers: list[Tensor], values: list[Tensor]):
            with torch.enable_grad():
                parameters = [parameter.detach().requires_grad_(True) for parameter in parameters]
                traced = batch.clone()
                for key, value in zip(inputs, values):
                    traced[key] = value
                state = dict(zip(parameter_names, parameters)) | dict(zip(buffer_names, buffers))
                loss = functional_call(wrapper, state, (traced,))
                gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
            gradients = [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, gradients)]
            return loss.detach(), [gradient.detach() for gradient in gradients]

        example = (
            [parameter.detach() for _, parameter in model.named_parameters()],
            [buffer for _, buffer in model.named_buffers()],
            [batch[key] for key in inputs],
        )
        traced = make_fx(loss_and_gradients, tracing_mode="real")(*example)
        logger.info("Compiling the training step (%d graph nodes) for a new batch structure.", len(traced.graph.nodes))
        return torch.compile(traced, fullgraph=True, backend=self.backend, dynamic=False)
