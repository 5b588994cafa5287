"""ConvNextBlock: residual structure, layer scale, calibration and repr."""

import pytest
import torch

from ponita.nn import ConvNextBlock, FibreBundleConv, KernelInputs, PointCloudConv
from ponita.nn._calibration import global_std
from ponita.ops import receiver_csr

F64 = torch.float64
GRAPH, _ = receiver_csr(torch.tensor([[0, 1, 2, 1, 0], [0, 0, 1, 2, 2]]), 3)


def _inputs(fibre: bool) -> tuple[torch.nn.Module, torch.Tensor, tuple]:
    if fibre:
        conv = FibreBundleConv(8, 4)
        x = torch.randn(3, 5, 8, dtype=F64)  # [N, O, C]
        args = (KernelInputs(torch.randn(5, 5, 4, dtype=F64), GRAPH, torch.randn(5, 5, 4, dtype=F64)),)
    else:
        conv = PointCloudConv(8, 4)
        x = torch.randn(3, 8, dtype=F64)  # [N, C]
        args = (KernelInputs(torch.randn(5, 4, dtype=F64), GRAPH),)
    return conv, x, args


@pytest.mark.parametrize("fibre", [False, True], ids=["point-cloud", "fibre-bundle"])
@pytest.mark.parametrize("layer_scale", [None, 0.1])
def test_convnext_block_is_residual_mlp_of_normalised_conv(fibre: bool, layer_scale: float | None) -> None:
    conv, x, args = _inputs(fibre)
    block = ConvNextBlock(conv, widening_factor=2, layer_scale=layer_scale).double()
    update = block.mlp(block.norm(block.conv(x, *args)))
    expected = x + (block.layer_scale * update if layer_scale is not None else update)
    out = block(x, *args)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, atol=1e-14, rtol=0)


def test_convnext_block_with_zero_layer_scale_is_identity() -> None:
    conv, x, args = _inputs(fibre=False)
    block = ConvNextBlock(conv, layer_scale=0.0).double()
    assert torch.equal(block(x, *args), x)


def test_convnext_block_layer_scale_is_per_channel_parameter() -> None:
    block = ConvNextBlock(PointCloudConv(8, 4), widening_factor=3, layer_scale=1e-2)
    assert isinstance(block.layer_scale, torch.nn.Parameter)
    assert torch.equal(block.layer_scale, torch.full((8,), 1e-2))
    assert block.mlp[0].out_features == 24
    assert ConvNextBlock(PointCloudConv(8, 4)).layer_scale is None


def test_convnext_block_calibrate_rescales_its_conv() -> None:
    conv, x, args = _inputs(fibre=False)
    block = ConvNextBlock(conv).double()
    out = block(x, *args, calibrate=True)
    torch.testing.assert_close(global_std(block.conv(x, *args) - block.conv.bias), global_std(x), atol=1e-12, rtol=0)
    assert torch.equal(out, block(x, *args))


def test_convnext_block_reset_parameters_restores_layer_scale() -> None:
    block = ConvNextBlock(PointCloudConv(8, 4), layer_scale=0.5)
    with torch.no_grad():
        block.layer_scale.fill_(3.0)
    block.reset_parameters()
    assert torch.equal(block.layer_scale, torch.full((8,), 0.5))


def test_convnext_block_repr() -> None:
    assert ConvNextBlock(PointCloudConv(8, 4)).extra_repr() == "layer_scale=None"
    block = ConvNextBlock(PointCloudConv(8, 4), layer_scale=0.1)
    expected_start = "ConvNextBlock(\n  layer_scale=0.1\n  (conv): PointCloudConv(8, basis_dim=4, depthwise=True)"
    assert str(block).startswith(expected_start)
