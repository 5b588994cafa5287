r"""The exact GELU with a double backward in a few passes: what force training differentiates twice.

Training a potential on forces differentiates the network twice, so every GELU of the kernel basis —
applied to ``[E, O, B]`` tensors, the largest of the network — runs PyTorch's double-backward formula,
eleven element-wise operations each allocating a tensor of that size. With
:math:`\mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x)` and :math:`\mathrm{GELU}''(x) = \varphi(x)\,(2 - x^2)`
(:math:`\Phi`, :math:`\varphi`: the standard normal CDF and density) this module computes the same
derivatives with PyTorch's fused ``gelu_backward`` kernel and a short chain of in-place products (three
allocations instead of eleven). Values are those of
:func:`torch.nn.functional.gelu`; derivatives agree with PyTorch's to rounding, to any order (the backward
is built from differentiable operations).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_PDF_SCALE = 1.0 / math.sqrt(2.0 * math.pi)


class _GeluBackward(torch.autograd.Function):
    """``grad · GELU'(x)``; its backward uses itself and GELU''."""

    @staticmethod
    def forward(ctx, grad: Tensor, x: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(grad, x)
        return torch.ops.aten.gelu_backward(grad, x)

    @staticmethod
    def backward(ctx, grad_grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # noqa: D102
        grad, x = ctx.saved_tensors
        d_grad = _GeluBackward.apply(grad_grad, x) if ctx.needs_input_grad[0] else None
        d_x = None
        if ctx.needs_input_grad[1]:
            if torch.is_grad_enabled():  # a third derivative follows: out-of-place, differentiable
                d_x = grad_grad * grad * torch.exp(-0.5 * x * x) * (2.0 - x * x) * _PDF_SCALE
            else:
                square = x * x
                d_x = torch.exp(square * -0.5)  # φ(x)·√(2π)
                d_x.mul_(square.neg_().add_(2.0)).mul_(grad_grad).mul_(grad).mul_(_PDF_SCALE)  # · GELU''(x)
        return d_grad, d_x


class _Gelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        return F.gelu(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        (x,) = ctx.saved_tensors
        return _GeluBackward.apply(grad, x)


class GELU(nn.Module):
    r"""The exact GELU, :math:`x\,\Phi(x)`, as :class:`torch.nn.GELU`, with a cheaper double backward.

    Example:
        >>> x = torch.linspace(-3, 3, 7)
        >>> torch.equal(GELU()(x), torch.nn.functional.gelu(x))
        True
    """

    def forward(self, x: Tensor) -> Tensor:
        return _Gelu.apply(x)
