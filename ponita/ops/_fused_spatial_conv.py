r"""Autograd for fused spatial-convolution backends: any order of derivatives from four kernels.

The spatial convolution is one slot of the quadrilinear form

.. math::
    T(g, x, \varphi, W) = \sum_{e,o,c,b} g_{\mathrm{dst}(e),o,c}\, x_{\mathrm{src}(e),o,c}\,
    \varphi_{e,o,b}\, W_{b,c},

with :math:`g` ``[N, O, C]``, :math:`x` ``[N, O, C]``, :math:`\varphi` ``[E, O, B]`` and
:math:`W` ``[B, C]``: the convolution is :math:`y = \partial T / \partial g`. Every derivative of
every slot is another slot with the incoming gradient put in place of the differentiated
operand, so a backend supplies four kernels, one per slot, and this module composes them:

- ``conv(x, φ, W)`` :math:`= \partial T/\partial g`:
  :math:`y_{i,o,c} = \sum_{e:\mathrm{dst}(e)=i} (\varphi_e W)_{o,c}\, x_{\mathrm{src}(e),o,c}`
- ``conv_transpose(g, φ, W)`` :math:`= \partial T/\partial x`:
  :math:`\sum_{e:\mathrm{src}(e)=j} (\varphi_e W)_{o,c}\, g_{\mathrm{dst}(e),o,c}`
- ``basis_grad(g, x, W)`` :math:`= \partial T/\partial \varphi`:
  :math:`\sum_c g_{\mathrm{dst}(e),o,c}\, x_{\mathrm{src}(e),o,c}\, W_{b,c}`
- ``weight_grad(g, x, φ)`` :math:`= \partial T/\partial W`:
  :math:`\sum_{e,o} \varphi_{e,o,b}\, g_{\mathrm{dst}(e),o,c}\, x_{\mathrm{src}(e),o,c}`

Because each slot is linear in each operand, the backward of slot :math:`s` with respect to
operand :math:`t` given the incoming gradient :math:`u` is slot :math:`t` evaluated with :math:`u`
in place of slot :math:`s`. The backward is therefore built from the same autograd function, so
double (and higher) backward works, and nothing of size ``[E, O, C]`` is saved: only the three
operands, which the caller holds anyway.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ponita.ops._receiver_csr import ReceiverCSR

SlotKernel = Callable[[Tensor, Tensor, Tensor, ReceiverCSR], Tensor]


class FusedKernels(NamedTuple):
    """The four slot kernels of a fused backend, each called on the other three operands in
    the order ``(g, x, basis, weight)`` and the graph. They need not be differentiable.

    Attributes:
        conv: ``(x [N,O,C], basis [E,O,B], weight [B,C]) → [N,O,C]``, the convolution.
        conv_transpose: ``(g [N,O,C], basis [E,O,B], weight [B,C]) → [N,O,C]``, summed at senders.
        basis_grad: ``(g [N,O,C], x [N,O,C], weight [B,C]) → [E,O,B]``.
        weight_grad: ``(g [N,O,C], x [N,O,C], basis [E,O,B]) → [B,C]``.
    """

    conv: SlotKernel
    conv_transpose: SlotKernel
    basis_grad: SlotKernel
    weight_grad: SlotKernel


class _Slot(torch.autograd.Function):
    """One slot of :math:`T`; its backward calls this function again on other slots."""

    @staticmethod
    def forward(
        ctx: Any, kernels: FusedKernels, graph: ReceiverCSR, slot: int, *operands: Tensor
    ) -> Tensor:
        ctx.kernels, ctx.graph, ctx.slot = kernels, graph, slot
        ctx.save_for_backward(*operands)
        return kernels[slot](*operands, graph)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        full = list(ctx.saved_tensors)
        full.insert(ctx.slot, grad)  # (g, x, basis, weight) with the incoming gradient in place
        other_slots = [s for s in range(4) if s != ctx.slot]
        grads: list[Tensor | None] = []
        for position, target in enumerate(other_slots):
            if _engine_needs(ctx, 3 + position):
                operands = [full[s] for s in range(4) if s != target]
                grads.append(_Slot.apply(ctx.kernels, ctx.graph, target, *operands))
            else:
                grads.append(None)
        return (None, None, None, *grads)


def _engine_needs(ctx: Any, index: int) -> bool:
    """Whether the running backward uses the gradient of input ``index``: it requires one, and the engine will
    execute the node it flows into. ``autograd.grad(energy, pos)`` (forces) thus skips the weight gradient,
    a full contraction per layer that ``needs_input_grad`` alone would compute and autograd would discard."""
    if not ctx.needs_input_grad[index]:
        return False
    # next_functions lists the tensor inputs only: the operands, which come after (kernels, graph, slot).
    node = ctx.next_functions[index - (len(ctx.needs_input_grad) - len(ctx.next_functions))][0]
    if node is None:
        return True
    try:
        return torch._C._will_engine_execute_node(node)
    except RuntimeError:  # a leaf that autograd.grad was asked about: needed
        return True


def fused_spatial_conv(
    kernels: FusedKernels, x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR
) -> Tensor:
    """Spatial convolution through a backend's slot kernels, differentiable to any order.

    Args:
        kernels: the backend's four slot kernels.
        x: node features.
        basis: kernel basis, edges in ``graph`` order.
        weight: basis-to-channel weights.
        graph: receiver-sorted graph.

    Returns:
        The aggregated messages, as :func:`~ponita.ops.spatial_conv_reference`.

    Shapes:
        x ``[N, O, C]``, basis ``[E, O, B]``, weight ``[B, C]`` → ``[N, O, C]``
    """
    return _Slot.apply(kernels, graph, 0, x, basis, weight)
