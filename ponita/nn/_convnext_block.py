"""ConvNeXt block around a PONITA convolution."""

import torch
from torch import Tensor, nn

from ponita.nn._fibre_bundle_conv import FibreBundleConv
from ponita.nn._gelu import GELU
from ponita.nn._kernel_inputs import KernelInputs
from ponita.nn._point_cloud_conv import PointCloudConv


class ConvNextBlock(nn.Module):
    r"""ConvNeXt block (Liu et al. 2022) with a point-cloud or fibre-bundle convolution.

    .. math::
        y = x + \gamma \odot W_2\, \mathrm{GELU}\big(W_1\, \mathrm{LayerNorm}(\mathrm{conv}(x))\big)

    LayerNorm acts over channels, per point (and per orientation); :math:`W_1` widens to
    ``widening_factor``·C channels; :math:`\gamma` is a per-channel layer scale (omitted when
    ``layer_scale`` is ``None``).

    Args:
        conv: the convolution, mapping C channels to C channels.
        widening_factor: width of the hidden layer relative to C.
        layer_scale: initial value of :math:`\gamma`, or ``None`` for no layer scale.

    Shapes:
        x ``[N, C]`` or ``[N, O, C]``, kernel_inputs as ``conv`` takes them → same as x

    Example:
        >>> from ponita.nn import KernelInputs
        >>> from ponita.ops import receiver_csr
        >>> graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> block = ConvNextBlock(PointCloudConv(8, 4), widening_factor=4, layer_scale=None)
        >>> block(torch.randn(2, 8), KernelInputs(torch.randn(2, 4), graph)).shape
        torch.Size([2, 8])
    """

    def __init__(
        self, conv: PointCloudConv | FibreBundleConv, widening_factor: int = 4, layer_scale: float | None = None
    ) -> None:
        super().__init__()
        channels = conv.channels
        self.conv = conv
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, widening_factor * channels),
            GELU(),
            nn.Linear(widening_factor * channels, channels),
        )
        self.layer_scale_init = layer_scale
        self.layer_scale = nn.Parameter(torch.empty(channels)) if layer_scale is not None else None  # [C]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        self.norm.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        if self.layer_scale is not None:
            nn.init.constant_(self.layer_scale, self.layer_scale_init)

    def forward(self, x: Tensor, kernel_inputs: KernelInputs, calibrate: bool = False) -> Tensor:
        """Applies the block; ``calibrate=True`` first rescales the conv (see ``conv.calibrate_``)."""
        y = self.conv.calibrate_(x, kernel_inputs) if calibrate else self.conv(x, kernel_inputs)
        y = self.mlp(self.norm(y))
        if self.layer_scale is not None:
            y = self.layer_scale * y
        return x + y

    def extra_repr(self) -> str:
        return f"layer_scale={self.layer_scale_init}"
