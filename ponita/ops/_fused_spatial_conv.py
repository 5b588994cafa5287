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
in place of slot :math:`s`. :class:`FusedOps` registers the four slots as PyTorch operators whose
autograd formulas are the other slots, so double (and higher) backward works, ``torch.compile`` keeps
them, and nothing of size ``[E, O, C]`` is saved: only the three operands, which the caller holds anyway.
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


_SLOT_NAMES = ("conv", "conv_transpose", "basis_grad", "weight_grad")


class FusedOps:
    """A backend's four slot kernels registered as PyTorch operators, ``ponita::<name>_<slot>``.

    Each operator (:func:`torch.library.custom_op`) has a shape function, so ``torch.compile`` (also with
    ``fullgraph=True``) and CUDA-graph capture keep it as one opaque call instead of falling back or
    breaking the graph, and an autograd formula made of the other slots, so it is differentiable to any
    order. The graph travels as its tensors and node count.

    Args:
        kernels: the backend's slot kernels.
        name: the operators' prefix; one registration per name and process.

    Example:
        >>> from ponita.ops._spatial_conv_cpu import CPU_KERNELS
        >>> from ponita.ops import receiver_csr
        >>> ops = FusedOps(CPU_KERNELS, "doctest_cpu")
        >>> graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> ops(torch.ones(2, 1, 3), torch.ones(2, 1, 2), torch.ones(2, 3), graph)
        tensor([[[2., 2., 2.]],
        <BLANKLINE>
                [[2., 2., 2.]]])
    """

    def __init__(self, kernels: FusedKernels, name: str) -> None:
        self.name = name
        self.slots = [self._define(slot, kernel) for slot, kernel in enumerate(kernels)]

    def __call__(self, x: Tensor, basis: Tensor, weight: Tensor, graph: ReceiverCSR) -> Tensor:
        """The convolution (slot ``conv``); see :func:`~ponita.ops.spatial_conv_reference`.

        Shapes:
            x ``[N, O, C]``, basis ``[E, O, B]``, weight ``[B, C]`` → ``[N, O, C]``
        """
        return self.slots[0](x, basis, weight, *_graph_tensors(graph), graph.num_nodes)

    def _define(self, slot: int, kernel: SlotKernel):
        def run(a: Tensor, b: Tensor, c: Tensor, src: Tensor, dst: Tensor, row_ptr: Tensor, sender_order: Tensor,
                sender_ptr: Tensor, num_nodes: int) -> Tensor:
            return kernel(a, b, c, ReceiverCSR(src, dst, row_ptr, num_nodes, sender_order, sender_ptr))

        op = torch.library.custom_op(f"ponita::{self.name}_{_SLOT_NAMES[slot]}", run, mutates_args=())
        op.register_fake(lambda *args: _output_like(slot, *args))
        op.register_autograd(lambda ctx, grad: self._backward(slot, ctx, grad), setup_context=_save_operands)
        return op

    def _backward(self, slot: int, ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        """Slot ``slot``'s gradient with respect to each operand: another slot, with ``grad`` in its place."""
        *operands, src, dst, row_ptr, sender_order, sender_ptr = ctx.saved_tensors
        full = list(operands)
        full.insert(slot, grad)  # (g, x, basis, weight) with the incoming gradient in place
        graph = (src, dst, row_ptr, sender_order, sender_ptr, ctx.num_nodes)
        grads: list[Tensor | None] = []
        for position, target in enumerate(s for s in range(4) if s != slot):
            if _engine_needs(ctx, position):
                grads.append(self.slots[target](*(full[s] for s in range(4) if s != target), *graph))
            else:
                grads.append(None)
        return (*grads, None, None, None, None, None, None)


def _graph_tensors(graph: ReceiverCSR) -> tuple[Tensor, ...]:
    return graph.src, graph.dst, graph.row_ptr, graph.sender_order, graph.sender_ptr


def _save_operands(ctx: Any, inputs: tuple, output: Tensor) -> None:
    ctx.save_for_backward(*inputs[:8])
    ctx.num_nodes = inputs[8]


def _output_like(slot: int, a: Tensor, b: Tensor, c: Tensor, src: Tensor, *graph: object) -> Tensor:
    """The output of slot ``slot`` without computing it (for tracing): shapes from the operands."""
    if slot in (0, 1):  # conv (x, φ, W), conv_transpose (g, φ, W): [N, O, C]
        return torch.empty_like(a)
    if slot == 2:  # basis_grad (g, x, W): [E, O, B]
        return a.new_empty((src.shape[0], a.shape[1], c.shape[0]))
    return a.new_empty((c.shape[2], a.shape[2]))  # weight_grad (g, x, φ): [B, C]


def _engine_needs(ctx: Any, index: int) -> bool:
    """Whether the running backward uses the gradient of operand ``index``: it requires one, and the engine will
    execute the node it flows into. ``autograd.grad(energy, pos)`` (forces) thus skips the weight gradient,
    a full contraction per layer that ``needs_input_grad`` alone would compute and autograd would discard."""
    if not ctx.needs_input_grad[index]:
        return False
    node = ctx.next_functions[index][0]  # the operands are the operator's first inputs
    if node is None:
        return True
    try:
        return torch._C._will_engine_execute_node(node)
    except RuntimeError:  # a leaf that autograd.grad was asked about: needed
        return True
