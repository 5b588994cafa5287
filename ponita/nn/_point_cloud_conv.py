"""Convolution on point clouds with kernels from a shared basis of bi-invariants."""

import math

import torch
from torch import Tensor, nn

from ponita.nn._calibration import global_std, rescale_
from ponita.nn._kernel_inputs import KernelInputs
from ponita.ops import scatter_sum, spatial_conv


class PointCloudConv(nn.Module):
    r"""Message passing with kernels conditioned on bi-invariant attributes (PONITA, Bekkers et al. 2024).

    Depthwise (default):

    .. math::
        y_{i,c} = \sum_{e : \mathrm{dst}(e) = i} k_{e,c}\, x_{\mathrm{src}(e),c} + \beta_c,
        \qquad k_{e,c} = \sum_b \varphi_{e,b} W_{b,c}

    Full-channel (``depthwise=False``): :math:`y_{i,d} = \sum_e \sum_c k_{e,c,d} x_{\mathrm{src}(e),c} + \beta_d`
    with :math:`k_{e,c,d} = \sum_b \varphi_{e,b} W_{b,c,d}` (materialises ``[E, C, C]``).

    :math:`\varphi` is the kernel basis shared by all layers (:class:`KernelBasis`), :math:`W` this
    layer's weights and :math:`\beta` its bias.

    Args:
        channels: number of channels :math:`C` (input and output).
        basis_dim: number of basis functions :math:`B`.
        depthwise: one kernel per channel instead of a full :math:`C \times C` kernel.
        bias: add a learned bias.

    Shapes:
        x ``[N, C]``, kernel_inputs.basis ``[E, B]`` (edges in ``graph`` order) → ``[N, C]``

    Example:
        >>> from ponita.nn import KernelInputs
        >>> from ponita.ops import receiver_csr
        >>> graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> PointCloudConv(8, 4)(torch.randn(2, 8), KernelInputs(torch.randn(2, 4), graph)).shape
        torch.Size([2, 8])
    """

    def __init__(self, channels: int, basis_dim: int, depthwise: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.channels, self.basis_dim, self.depthwise = channels, basis_dim, depthwise
        out_features = channels if depthwise else channels * channels
        self.weight = nn.Parameter(torch.empty(basis_dim, out_features))  # [B, C] or [B, C·C]
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None  # [C]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.basis_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, kernel_inputs: KernelInputs) -> Tensor:
        basis, graph = kernel_inputs.basis, kernel_inputs.graph
        if self.depthwise:
            y = spatial_conv(x.unsqueeze(1), basis.unsqueeze(1), self.weight, graph).squeeze(1)  # [N, C]
        else:
            kernel = (basis @ self.weight).unflatten(-1, (self.channels, self.channels))  # [E, C, C]
            messages = torch.einsum("ecd,ec->ed", kernel, x.index_select(0, graph.src))  # [E, C]
            y = scatter_sum(messages, graph.dst, graph.num_nodes)  # [N, C]
        return y if self.bias is None else y + self.bias

    @torch.no_grad()
    def calibrate_(self, x: Tensor, kernel_inputs: KernelInputs) -> Tensor:
        """Rescales the kernel so the output (before bias) has the std of ``x``; returns the new output."""
        rescale_(self.weight, global_std(x), global_std(self(x, kernel_inputs) - self._bias_or_zero()))
        return self(x, kernel_inputs)

    def _bias_or_zero(self) -> Tensor | float:
        return 0.0 if self.bias is None else self.bias

    def extra_repr(self) -> str:
        return f"{self.channels}, basis_dim={self.basis_dim}, depthwise={self.depthwise}"
