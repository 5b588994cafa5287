"""KernelBasis: shapes, input size of the MLP and repr."""

import pytest
import torch

from ponita.nn import KernelBasis, PolynomialFeatures


@pytest.mark.parametrize("leading", [(7,), (7, 4), (7, 4, 4)], ids=["edges", "edges-ori", "edges-ori-ori"])
def test_kernel_basis_maps_last_dimension_to_basis(leading: tuple[int, ...]) -> None:
    basis = KernelBasis(num_invariants=3, hidden_dim=16, basis_dim=8, degree=3)
    assert basis(torch.randn(*leading, 3)).shape == (*leading, 8)


def test_kernel_basis_mlp_input_is_polynomial_size() -> None:
    basis = KernelBasis(num_invariants=2, hidden_dim=16, basis_dim=8, degree=3)
    assert basis.mlp[0].in_features == PolynomialFeatures(3).num_features(2) == 14
    assert basis.mlp[2].out_features == 8


def test_kernel_basis_reset_parameters_redraws_weights() -> None:
    basis = KernelBasis(2, 16, 8, degree=2)
    before = basis.mlp[0].weight.detach().clone()
    basis.reset_parameters()
    assert not torch.equal(before, basis.mlp[0].weight)


def test_kernel_basis_repr() -> None:
    basis = KernelBasis(2, 16, 8, degree=3)
    assert basis.extra_repr() == "num_invariants=2, basis_dim=8"
    expected_start = "KernelBasis(\n  num_invariants=2, basis_dim=8\n  (polynomial): PolynomialFeatures(degree=3)"
    assert str(basis).startswith(expected_start)
