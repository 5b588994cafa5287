"""Lifting to an orientation grid and reading back: shapes, values and round trips."""

import pytest
import torch

from ponita.geometry import fibonacci_grid_s2, grid_s1, grid_so2, grid_so3
from ponita.nn import lift_scalars, lift_vectors, scalar_readout, vector_readout
from ponita.geometry import random_rotation

F64 = torch.float64


def test_lift_scalars_copies_to_every_orientation() -> None:
    x = torch.randn(4, 3)
    lifted = lift_scalars(x, 5)
    assert lifted.shape == (4, 5, 3)
    assert torch.equal(lifted, x[:, None].expand(-1, 5, -1))
    assert torch.equal(scalar_readout(lifted), x)


def test_lift_vectors_projects_on_directions_and_rotation_axes() -> None:
    vec = torch.randn(4, 2, 3, dtype=F64)  # [N, V, n]
    grid = fibonacci_grid_s2(6)
    assert lift_vectors(vec, grid).shape == (4, 6, 2)
    torch.testing.assert_close(lift_vectors(vec, grid)[1, 2, 0], vec[1, 0] @ grid[2])
    rotations = grid_so3(5, steps=10)
    lifted = lift_vectors(vec, rotations)  # [N, O, V·n]
    assert lifted.shape == (4, 5, 6)
    torch.testing.assert_close(lifted[2, 3, 3:], rotations[3].T @ vec[2, 1])


def test_vector_lift_then_readout_on_fine_s2_grid_is_a_third() -> None:
    vec = torch.randn(3, 2, 3, dtype=F64)
    grid = fibonacci_grid_s2(2000)
    out = vector_readout(lift_vectors(vec, grid), grid)  # (1/O) Σ (v·o) o ≈ v/3
    torch.testing.assert_close(out, vec / 3.0, atol=1e-3, rtol=0)


@pytest.mark.parametrize("num_ori", [3, 4, 7])
def test_vector_lift_then_readout_on_s1_grid_is_a_half(num_ori: int) -> None:
    vec = torch.randn(3, 2, 2, dtype=F64)
    grid = grid_s1(num_ori)
    torch.testing.assert_close(vector_readout(lift_vectors(vec, grid), grid), vec / 2.0, atol=1e-14, rtol=0)


@pytest.mark.parametrize("grid", [grid_so2(5), grid_so3(12), grid_so3(7, steps=10)], ids=["so2", "so3-group", "so3"])
def test_vector_lift_then_readout_on_rotation_grid_is_identity(grid: torch.Tensor) -> None:
    dim = grid.shape[-1]
    vec = torch.randn(3, 2, dim, dtype=F64)
    torch.testing.assert_close(vector_readout(lift_vectors(vec, grid), grid), vec, atol=1e-14, rtol=0)


def test_vector_readout_rotates_with_the_grid() -> None:
    f = torch.randn(2, 9, 4, dtype=F64)
    grid = fibonacci_grid_s2(9)
    rotation = random_rotation(3)
    torch.testing.assert_close(vector_readout(f, grid @ rotation.T), vector_readout(f, grid) @ rotation.T)
