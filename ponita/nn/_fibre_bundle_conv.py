"""Convolution on the fibre bundle: features on a grid of orientations at every point."""

import math

import torch
from torch import Tensor, nn

from ponita.nn._calibration import global_std, rescale_
from ponita.nn._kernel_inputs import KernelInputs
from ponita.ops import ReceiverCSR, scatter_sum, spatial_conv


# Largest [N, O, O, C] broadcast product of the depthwise fibre convolution; bmm is faster above it
# (benchmarks/bench_fibre_conv.py on the CPU, forward and backward: broadcast 1.6x faster at 73k
# elements, bmm 1.8x faster at 290k and 7x at 5.4M).
_BROADCAST_MAX_ELEMENTS = 2**17


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous.

    The gradient of ``permute(...).contiguous()`` arrives as a permuted view; ``bmm``'s backward
    on such a strided view is ~40× slower than on contiguous memory. Differentiable to any order.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        return grad.contiguous()


class FibreBundleConv(nn.Module):
    r"""Convolution on :math:`\mathbb{R}^n \times S^{n-1}` or SE(n) fibre bundles (PONITA, Bekkers et al. 2024).

    Features :math:`x_{i,o,c}` live on a grid of :math:`O` orientations (or rotations) at every
    point. Separable (default): a spatial convolution per orientation, then a convolution over the
    fibre normalised by :math:`1/O`:

    .. math::
        x'_{i,o,c} = \sum_{e : \mathrm{dst}(e) = i} k_{e,o,c}\, x_{\mathrm{src}(e),o,c}, \qquad
        y_{i,p,c} = \frac{1}{O} \sum_o x'_{i,o,c}\, \kappa_{o,p,c} + \beta_c

    with :math:`k_{e,o,c} = \sum_b \varphi_{e,o,b} W_{b,c}` from the spatial basis :math:`\varphi`
    (``[E, O, B]``) and :math:`\kappa_{o,p,c} = \sum_b \psi_{o,p,b} V_{b,c}` from the fibre basis
    :math:`\psi` (``[O, O, B]``). With ``depthwise=False`` the fibre kernel mixes channels,
    :math:`y_{i,p,d} = \frac1O \sum_{o,c} x'_{i,o,c} \kappa_{o,p,c,d}`.

    Non-separable (``separable=False``): one kernel on the full attributes of the receiver
    orientation :math:`p` and sender orientation :math:`o` (basis ``[E, O, O, B]``, memory
    :math:`O` times larger):

    .. math::
        y_{i,p,c} = \frac{1}{O} \sum_{e : \mathrm{dst}(e) = i} \sum_o k_{e,p,o,c}\, x_{\mathrm{src}(e),o,c} + \beta_c

    Args:
        channels: number of channels :math:`C` (input and output).
        basis_dim: number of basis functions :math:`B`.
        separable: spatial conv then fibre conv, instead of one full kernel.
        depthwise: per-channel fibre kernel (separable only; the spatial kernel is always per channel).
        bias: add a learned bias.

    Shapes:
        x ``[N, O, C]``; separable: kernel_inputs.basis ``[E, O, B]``, kernel_inputs.fibre_basis
        ``[O, O, B]``; full: basis ``[E, O, O, B]``, fibre_basis ``None`` → ``[N, O, C]``

    Example:
        >>> from ponita.nn import KernelInputs
        >>> from ponita.ops import receiver_csr
        >>> graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> kernel_inputs = KernelInputs(torch.randn(2, 6, 4), graph, fibre_basis=torch.randn(6, 6, 4))
        >>> FibreBundleConv(8, 4)(torch.randn(2, 6, 8), kernel_inputs).shape
        torch.Size([2, 6, 8])
    """

    def __init__(
        self, channels: int, basis_dim: int, separable: bool = True, depthwise: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        if not separable and not depthwise:
            raise ValueError("A non-separable FibreBundleConv is depthwise; set depthwise=True.")
        self.channels, self.basis_dim = channels, basis_dim
        self.separable, self.depthwise = separable, depthwise
        self.weight = nn.Parameter(torch.empty(basis_dim, channels))  # [B, C]
        fibre_features = channels if depthwise else channels * channels
        self.fibre_weight = (
            nn.Parameter(torch.empty(basis_dim, fibre_features)) if separable else None
        )  # [B, C] or [B, C·C]
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None  # [C]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.basis_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.fibre_weight is not None:
            nn.init.uniform_(self.fibre_weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, kernel_inputs: KernelInputs) -> Tensor:
        basis, graph, fibre_basis = kernel_inputs
        if self.separable:
            y = self._fibre_conv(self._spatial_conv(x, basis, graph), fibre_basis)  # [N, O, C]
        else:
            y = self._full_conv(x, basis, graph)  # [N, O, C]
        return y if self.bias is None else y + self.bias

    def _spatial_conv(self, x: Tensor, basis: Tensor, graph: ReceiverCSR) -> Tensor:
        return spatial_conv(x, basis, self.weight, graph)  # [N, O, C]

    def _fibre_conv(self, x: Tensor, fibre_basis: Tensor) -> Tensor:
        num_ori = x.shape[1]
        fibre_kernel = fibre_basis @ self.fibre_weight  # [O, O, C] or [O, O, C·C]
        if self.depthwise:
            if x.shape[0] * num_ori * num_ori * x.shape[2] <= _BROADCAST_MAX_ELEMENTS:
                # Small fibres (one molecule or a few): a broadcast product summed over the sender
                # orientation, [N, O, O, C], costs less than bmm's permuted copies on the CPU, forward
                # and backward, and is what Inductor fuses into one loop when compiled.
                return (x.unsqueeze(2) * fibre_kernel.unsqueeze(0)).sum(1) / num_ori  # [N, O, C]
            # One [N, O] × [O, O] product per channel; bmm on contiguous operands is ~40× faster
            # on the CPU than the equivalent einsum, which picks a strided layout.
            per_channel = torch.bmm(x.permute(2, 0, 1).contiguous(), fibre_kernel.permute(2, 0, 1).contiguous())
            per_channel = _ContiguousGrad.apply(per_channel)  # [C, N, O]
            return per_channel.permute(1, 2, 0).contiguous() / num_ori  # [N, O, C]
        fibre_kernel = fibre_kernel.unflatten(-1, (self.channels, self.channels))  # [O, O, C, C]
        return torch.einsum("noc,opcd->npd", x, fibre_kernel) / num_ori  # [N, O, C]

    def _full_conv(self, x: Tensor, basis: Tensor, graph: ReceiverCSR) -> Tensor:
        num_ori = x.shape[1]
        kernel = basis @ self.weight  # [E, O, O, C]: receiver orientation p, sender orientation o
        messages = torch.einsum("epoc,eoc->epc", kernel, x.index_select(0, graph.src)) / num_ori  # [E, O, C]
        return scatter_sum(messages, graph.dst, graph.num_nodes)  # [N, O, C]

    @torch.no_grad()
    def calibrate_(self, x: Tensor, kernel_inputs: KernelInputs) -> Tensor:
        """Rescales the kernels so each stage keeps the std of its input; returns the new output.

        Separable: the spatial kernel is scaled by std(x)/std(x'), then the fibre kernel by
        std(x')/std(y), as in the reference code; non-separable: the kernel by std(x)/std(y).
        """
        basis, graph, fibre_basis = kernel_inputs
        if self.separable:
            rescale_(self.weight, global_std(x), global_std(self._spatial_conv(x, basis, graph)))
            spatial = self._spatial_conv(x, basis, graph)  # [N, O, C]
            rescale_(self.fibre_weight, global_std(spatial), global_std(self._fibre_conv(spatial, fibre_basis)))
        else:
            rescale_(self.weight, global_std(x), global_std(self._full_conv(x, basis, graph)))
        return self(x, kernel_inputs)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, basis_dim={self.basis_dim}, separable={self.separable}, "
            f"depthwise={self.depthwise}"
        )
