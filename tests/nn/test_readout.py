"""SphericalTensorReadout: shape, equivariance with e3nn's Wigner matrices, errors and repr."""

import pytest
import torch
from e3nn import o3

from ponita.geometry import fibonacci_grid_s2, polyhedron_grid_s2
from ponita.nn import SphericalTensorReadout
from ponita.geometry import random_rotation

F64 = torch.float64


def test_spherical_tensor_readout_shape() -> None:
    readout = SphericalTensorReadout(fibonacci_grid_s2(20), l=2)
    assert readout(torch.randn(4, 20, 3, dtype=F64)).shape == (4, 3, 5)
    assert SphericalTensorReadout(fibonacci_grid_s2(20), l=1)(torch.randn(4, 20, 3, dtype=F64)).shape == (4, 3, 3)


@pytest.mark.parametrize("l", [1, 2, 3])
def test_spherical_tensor_readout_transforms_with_wigner_matrix(l: int) -> None:
    # f sampled on the grid; the rotated function sampled on the rotated grid has the same values
    grid = fibonacci_grid_s2(30)
    f = torch.randn(2, 30, 3, dtype=F64)
    rotation = random_rotation(3)
    wigner = o3.Irreps(f"{l}{'e' if l % 2 == 0 else 'o'}").D_from_matrix(rotation)  # [2l+1, 2l+1]
    out = SphericalTensorReadout(grid, l=l)(f)  # [N, T, 2l+1]
    rotated = SphericalTensorReadout(grid @ rotation.T, l=l)(f)
    # e3nn builds D from float32 constants, so it is exact to ~1e-7 only
    torch.testing.assert_close(rotated, out @ wigner.T, atol=1e-5, rtol=0)
    assert float((rotated - out).abs().max()) > 1e-2  # the rotation does act


def test_spherical_tensor_readout_of_quadrupole_on_symmetric_grid() -> None:
    # f(o) = oᵀ A o with traceless symmetric A: its l = 2 part is nonzero and its l = 0 part vanishes
    grid = polyhedron_grid_s2(20)
    matrix = torch.randn(3, 3, dtype=F64)
    matrix = matrix + matrix.T
    matrix = matrix - torch.trace(matrix) / 3 * torch.eye(3, dtype=F64)
    f = torch.einsum("oi,ij,oj->o", grid, matrix, grid)[None, :, None]  # [1, O, 1]
    assert float(SphericalTensorReadout(grid, l=2)(f).abs().max()) > 0.1
    assert float(SphericalTensorReadout(grid, l=0)(f).abs().max()) < 1e-12


def test_spherical_tensor_readout_harmonics_are_a_buffer() -> None:
    readout = SphericalTensorReadout(fibonacci_grid_s2(10))
    assert readout.state_dict()["harmonics"].shape == (10, 5)


def test_spherical_tensor_readout_rejects_non_s2_grid() -> None:
    with pytest.raises(ValueError, match=r"needs an S² grid of shape \[O, 3\], got \[4, 2\]"):
        SphericalTensorReadout(torch.randn(4, 2))


def test_spherical_tensor_readout_repr() -> None:
    assert str(SphericalTensorReadout(fibonacci_grid_s2(20))) == "SphericalTensorReadout(l=2, num_ori=20)"
