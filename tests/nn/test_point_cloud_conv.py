"""PointCloudConv: shapes, the formula against explicit loops over edges, calibration and repr."""

import pytest
import torch

from ponita.nn import KernelInputs, PointCloudConv
from ponita.nn._calibration import global_std
from ponita.ops import receiver_csr

F64 = torch.float64
EDGE_INDEX = torch.tensor([[1, 2, 0, 3, 3, 2, 1], [0, 0, 1, 1, 2, 3, 1]])  # unsorted, with a self-loop
NUM_NODES, CHANNELS, BASIS_DIM = 4, 3, 5


def _conv_inputs(depthwise: bool) -> tuple[PointCloudConv, torch.Tensor, torch.Tensor]:
    conv = PointCloudConv(CHANNELS, BASIS_DIM, depthwise=depthwise).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(NUM_NODES, CHANNELS, dtype=F64)  # [N, C]
    basis = torch.randn(EDGE_INDEX.shape[1], BASIS_DIM, dtype=F64)  # [E, B], in EDGE_INDEX order
    return conv, x, basis


def _run(conv: PointCloudConv, x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    graph, perm = receiver_csr(EDGE_INDEX, NUM_NODES)
    return conv(x, KernelInputs(basis[perm], graph))


def _reference(conv: PointCloudConv, x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """y_i = Σ_{e: dst(e) = i} k_e x_src(e) + β, with k from the docstring, by explicit loops."""
    W, beta = conv.weight.detach(), conv.bias.detach()
    y = [[float(beta[c]) for c in range(CHANNELS)] for _ in range(NUM_NODES)]
    for e, (src, dst) in enumerate(EDGE_INDEX.T.tolist()):
        for d in range(CHANNELS):
            if conv.depthwise:
                kernel = sum(float(basis[e, b]) * float(W[b, d]) for b in range(BASIS_DIM))
                y[dst][d] += kernel * float(x[src, d])
            else:
                for c in range(CHANNELS):
                    kernel = sum(float(basis[e, b]) * float(W[b, c * CHANNELS + d]) for b in range(BASIS_DIM))
                    y[dst][d] += kernel * float(x[src, c])
    return torch.tensor(y, dtype=F64)


@pytest.mark.parametrize("depthwise", [True, False])
def test_point_cloud_conv_matches_loop_reference(depthwise: bool) -> None:
    conv, x, basis = _conv_inputs(depthwise)
    out = _run(conv, x, basis)
    assert out.shape == (NUM_NODES, CHANNELS)
    torch.testing.assert_close(out, _reference(conv, x, basis), atol=1e-12, rtol=0)


@pytest.mark.parametrize("depthwise", [True, False])
def test_point_cloud_conv_weight_shape(depthwise: bool) -> None:
    conv = PointCloudConv(8, 4, depthwise=depthwise)
    assert conv.weight.shape == (4, 8 if depthwise else 64)
    assert conv.bias.shape == (8,)
    assert PointCloudConv(8, 4, bias=False).bias is None


@pytest.mark.parametrize("depthwise", [True, False])
def test_point_cloud_conv_calibrate_matches_output_std_to_input_std(depthwise: bool) -> None:
    conv, x, basis = _conv_inputs(depthwise)
    graph, perm = receiver_csr(EDGE_INDEX, NUM_NODES)
    returned = conv.calibrate_(x, KernelInputs(basis[perm], graph))
    out = conv(x, KernelInputs(basis[perm], graph))
    assert torch.equal(returned, out)
    torch.testing.assert_close(global_std(out - conv.bias), global_std(x), atol=1e-12, rtol=0)


def test_point_cloud_conv_reset_parameters_zeroes_bias() -> None:
    conv, _, _ = _conv_inputs(True)
    conv.reset_parameters()
    assert torch.equal(conv.bias, torch.zeros(CHANNELS, dtype=F64))


def test_point_cloud_conv_repr() -> None:
    assert str(PointCloudConv(8, 4)) == "PointCloudConv(8, basis_dim=4, depthwise=True)"
    assert str(PointCloudConv(8, 4, depthwise=False)) == "PointCloudConv(8, basis_dim=4, depthwise=False)"
