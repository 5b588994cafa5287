"""PolynomialFeatures: number of features, values and errors."""

import pytest
import torch

from ponita.nn import PolynomialFeatures


@pytest.mark.parametrize(
    ("degree", "num_inputs", "expected"), [(3, 2, 14), (3, 3, 39), (3, 1, 3), (1, 5, 5), (2, 2, 6)]
)
def test_polynomial_features_count_all_monomials(degree: int, num_inputs: int, expected: int) -> None:
    features = PolynomialFeatures(degree)
    assert features.num_features(num_inputs) == expected
    assert features(torch.randn(4, 7, num_inputs)).shape == (4, 7, expected)


def test_polynomial_features_values_are_tensor_powers() -> None:
    out = PolynomialFeatures(3)(torch.tensor([[2.0, 3.0]], dtype=torch.float64))
    expected = [2, 3, 4, 6, 6, 9, 8, 12, 12, 18, 12, 18, 18, 27]  # x, x⊗x, x⊗x⊗x (row-major)
    assert out.tolist() == [[float(v) for v in expected]]


def test_polynomial_features_degree_one_is_identity() -> None:
    x = torch.randn(5, 3)
    assert torch.equal(PolynomialFeatures(1)(x), x)


@pytest.mark.parametrize("degree", [0, -1, 2.0])
def test_polynomial_features_rejects_bad_degree(degree) -> None:
    with pytest.raises(ValueError, match="degree must be an integer ≥ 1"):
        PolynomialFeatures(degree)


def test_polynomial_features_repr() -> None:
    assert str(PolynomialFeatures(3)) == "PolynomialFeatures(degree=3)"
