"""PolynomialCutoff: values at 0, the cutoff and beyond, and smoothness at the cutoff."""

import pytest
import torch

from ponita.nn import PolynomialCutoff


def test_polynomial_cutoff_is_one_at_zero_and_zero_from_the_cutoff_on() -> None:
    cutoff = PolynomialCutoff(2.0)
    distance = torch.tensor([0.0, 2.0, 2.5, 100.0], dtype=torch.float64)
    assert cutoff(distance).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_polynomial_cutoff_value_at_half_radius() -> None:
    # p = 6, u = 1/2: 1 − 28/64 + 48/128 − 21/256
    value = PolynomialCutoff(3.0)(torch.tensor(1.5, dtype=torch.float64))
    assert abs(float(value) - (1.0 - 28 / 64 + 48 / 128 - 21 / 256)) < 1e-15


def test_polynomial_cutoff_decreases_monotonically() -> None:
    values = PolynomialCutoff(1.0)(torch.linspace(0.0, 1.0, 101, dtype=torch.float64))
    assert bool((values[1:] <= values[:-1]).all())


def test_polynomial_cutoff_is_smooth_at_the_cutoff() -> None:
    cutoff = PolynomialCutoff(2.0)
    distance = torch.tensor([2.0 - 1e-4, 2.0, 2.0 + 1e-4], dtype=torch.float64, requires_grad=True)
    values = cutoff(distance)
    (first,) = torch.autograd.grad(values.sum(), distance, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), distance)
    assert float(values.detach().abs().max()) < 1e-10
    assert float(first.detach().abs().max()) < 1e-6
    assert float(second.abs().max()) < 1e-2
    # the first derivative is of order (1 − u)², far from zero inside
    inside = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(cutoff(inside), inside)
    assert float(slope) < -0.5


def test_polynomial_cutoff_radius_is_a_buffer() -> None:
    cutoff = PolynomialCutoff(2.5)
    assert "radius" in cutoff.state_dict()
    assert float(cutoff.state_dict()["radius"]) == 2.5


@pytest.mark.parametrize("radius", [0.0, -1.0])
def test_polynomial_cutoff_rejects_non_positive_radius(radius: float) -> None:
    with pytest.raises(ValueError, match="radius must be positive"):
        PolynomialCutoff(radius)


def test_polynomial_cutoff_repr() -> None:
    assert str(PolynomialCutoff(2.0)) == "PolynomialCutoff(radius=2.0, exponent=6)"
