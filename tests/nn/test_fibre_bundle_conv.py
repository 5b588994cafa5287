"""FibreBundleConv: shapes, the formulas against explicit loops, calibration, errors and repr."""

import pytest
import torch

from ponita.nn import FibreBundleConv, KernelInputs
from ponita.nn._calibration import global_std
from ponita.ops import receiver_csr

F64 = torch.float64
EDGE_INDEX = torch.tensor([[1, 2, 0, 2, 1], [0, 0, 1, 2, 2]])  # with a self-loop
NUM_NODES, NUM_ORI, CHANNELS, BASIS_DIM = 3, 3, 2, 4
VARIANTS = [(True, True), (True, False), (False, True)]  # (separable, depthwise)
VARIANT_IDS = ["separable-depthwise", "separable-full-channel", "non-separable"]


def _inputs(separable: bool, depthwise: bool):
    conv = FibreBundleConv(CHANNELS, BASIS_DIM, separable=separable, depthwise=depthwise).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(NUM_NODES, NUM_ORI, CHANNELS, dtype=F64)  # [N, O, C]
    num_edges = EDGE_INDEX.shape[1]
    if separable:
        basis = torch.randn(num_edges, NUM_ORI, BASIS_DIM, dtype=F64)  # [E, O, B]
        fibre_basis = torch.randn(NUM_ORI, NUM_ORI, BASIS_DIM, dtype=F64)  # [O, O, B]
    else:
        basis = torch.randn(num_edges, NUM_ORI, NUM_ORI, BASIS_DIM, dtype=F64)  # [E, O, O, B]
        fibre_basis = None
    return conv, x, basis, fibre_basis


def _run(conv, x, basis, fibre_basis):
    graph, perm = receiver_csr(EDGE_INDEX, NUM_NODES)
    return conv(x, KernelInputs(basis[perm], graph, fibre_basis))


def _lin(basis_row: torch.Tensor, weight: torch.Tensor, column: int) -> float:
    return sum(float(basis_row[b]) * float(weight[b, column]) for b in range(BASIS_DIM))


def _reference(conv, x, basis, fibre_basis) -> torch.Tensor:
    """The docstring formulas with explicit loops over edges, orientations and channels."""
    W, beta = conv.weight.detach(), conv.bias.detach()
    C, O = CHANNELS, NUM_ORI
    y = [[[float(beta[c]) for c in range(C)] for _ in range(O)] for _ in range(NUM_NODES)]
    if not conv.separable:  # y_ipc = 1/O Σ_e Σ_o k_epoc x_src,o,c
        for e, (src, dst) in enumerate(EDGE_INDEX.T.tolist()):
            for p in range(O):
                for o in range(O):
                    for c in range(C):
                        y[dst][p][c] += _lin(basis[e, p, o], W, c) * float(x[src, o, c]) / O
        return torch.tensor(y, dtype=F64)
    spatial = [[[0.0] * C for _ in range(O)] for _ in range(NUM_NODES)]  # x'_ioc = Σ_e k_eoc x_src,o,c
    for e, (src, dst) in enumerate(EDGE_INDEX.T.tolist()):
        for o in range(O):
            for c in range(C):
                spatial[dst][o][c] += _lin(basis[e, o], W, c) * float(x[src, o, c])
    V = conv.fibre_weight.detach()
    for i in range(NUM_NODES):
        for p in range(O):
            for d in range(C):
                for o in range(O):
                    if conv.depthwise:  # y_ipd = 1/O Σ_o x'_iod κ_opd
                        y[i][p][d] += spatial[i][o][d] * _lin(fibre_basis[o, p], V, d) / O
                    else:  # y_ipd = 1/O Σ_oc x'_ioc κ_opcd
                        for c in range(C):
                            y[i][p][d] += spatial[i][o][c] * _lin(fibre_basis[o, p], V, c * C + d) / O
    return torch.tensor(y, dtype=F64)


@pytest.mark.parametrize("broadcast_max", [2**17, 0], ids=["broadcast-fibre", "bmm-fibre"])
@pytest.mark.parametrize(("separable", "depthwise"), VARIANTS, ids=VARIANT_IDS)
def test_fibre_bundle_conv_matches_loop_reference(
    separable: bool, depthwise: bool, broadcast_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The depthwise fibre convolution has two paths, by size: both must give the formula's result.
    monkeypatch.setattr("ponita.nn._fibre_bundle_conv._BROADCAST_MAX_ELEMENTS", broadcast_max)
    conv, x, basis, fibre_basis = _inputs(separable, depthwise)
    out = _run(conv, x, basis, fibre_basis)
    assert out.shape == (NUM_NODES, NUM_ORI, CHANNELS)
    torch.testing.assert_close(out, _reference(conv, x, basis, fibre_basis), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("separable", "depthwise"), VARIANTS, ids=VARIANT_IDS)
def test_fibre_bundle_conv_parameter_shapes(separable: bool, depthwise: bool) -> None:
    conv = FibreBundleConv(8, 4, separable=separable, depthwise=depthwise)
    assert conv.weight.shape == (4, 8)
    if separable:
        assert conv.fibre_weight.shape == (4, 8 if depthwise else 64)
    else:
        assert conv.fibre_weight is None
    assert FibreBundleConv(8, 4, bias=False).bias is None


@pytest.mark.parametrize(("separable", "depthwise"), VARIANTS, ids=VARIANT_IDS)
def test_fibre_bundle_conv_is_equivariant_to_cyclic_shifts_of_a_cyclic_fibre(separable: bool, depthwise: bool) -> None:
    # Bases that depend on orientation differences only (as for a grid on S¹) make the conv commute with shifts.
    conv, x, _, _ = _inputs(separable, depthwise)
    num_edges = EDGE_INDEX.shape[1]
    per_difference = torch.randn(num_edges, NUM_ORI, BASIS_DIM, dtype=F64)  # indexed by (p − o) mod O
    difference = (torch.arange(NUM_ORI)[:, None] - torch.arange(NUM_ORI)[None, :]) % NUM_ORI  # [O, O]
    if separable:
        basis = torch.randn(num_edges, 1, BASIS_DIM, dtype=F64).expand(-1, NUM_ORI, -1)  # [E, O, B]
        fibre_basis = torch.randn(NUM_ORI, BASIS_DIM, dtype=F64)[difference.T]  # [O, O, B] by (p − o)
    else:
        basis, fibre_basis = per_difference[:, difference], None  # [E, O, O, B]
    shifted = torch.roll(x, shifts=1, dims=1)
    torch.testing.assert_close(
        _run(conv, shifted, basis, fibre_basis), torch.roll(_run(conv, x, basis, fibre_basis), 1, dims=1)
    )


@pytest.mark.parametrize(("separable", "depthwise"), VARIANTS, ids=VARIANT_IDS)
def test_fibre_bundle_conv_calibrate_matches_output_std_to_input_std(separable: bool, depthwise: bool) -> None:
    conv, x, basis, fibre_basis = _inputs(separable, depthwise)
    with torch.no_grad():
        conv.bias.zero_()
    graph, perm = receiver_csr(EDGE_INDEX, NUM_NODES)
    returned = conv.calibrate_(x, KernelInputs(basis[perm], graph, fibre_basis))
    out = conv(x, KernelInputs(basis[perm], graph, fibre_basis))
    assert torch.equal(returned, out)
    torch.testing.assert_close(global_std(out), global_std(x), atol=1e-12, rtol=0)


def test_fibre_bundle_conv_rejects_non_separable_full_channel() -> None:
    with pytest.raises(ValueError, match="non-separable FibreBundleConv is depthwise; set depthwise=True"):
        FibreBundleConv(8, 4, separable=False, depthwise=False)


def test_fibre_bundle_conv_repr() -> None:
    assert str(FibreBundleConv(8, 4)) == "FibreBundleConv(8, basis_dim=4, separable=True, depthwise=True)"
    expected = "FibreBundleConv(8, basis_dim=4, separable=False, depthwise=True)"
    assert str(FibreBundleConv(8, 4, separable=False)) == expected
