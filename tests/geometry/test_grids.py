"""Orientation grids: unit, deterministic, the Fibonacci formula, and rotation groups that are groups."""

import math

import pytest
import torch

from ponita.geometry import (
    axis_angle_to_matrix,
    fibonacci_grid_s2,
    grid_s1,
    grid_so2,
    grid_so3,
    polyhedron_grid_s2,
    quaternion_to_matrix,
    repulsion_grid_s2,
    rotation_group,
)

GROUP_ORDERS = {"tetrahedral": 12, "octahedral": 24, "icosahedral": 60}
POLYHEDRON_GROUPS = [(4, "tetrahedral"), (6, "octahedral"), (8, "octahedral"), (12, "icosahedral"), (20, "icosahedral")]


def _assert_rotations(matrices: torch.Tensor, atol: float = 1e-12) -> None:
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype).expand_as(matrices)
    torch.testing.assert_close(matrices @ matrices.transpose(-1, -2), eye, atol=atol, rtol=0)
    ones = torch.ones(matrices.shape[0], dtype=matrices.dtype)
    torch.testing.assert_close(torch.det(matrices), ones, atol=atol, rtol=0)


def _matching(rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Index of the nearest target for every row, asserting that it matches to 1e-12."""
    distance = torch.cdist(rows.flatten(1), targets.flatten(1), compute_mode="donot_use_mm_for_euclid_dist")  # [A, B]
    nearest, index = distance.min(dim=1)
    assert float(nearest.max()) < 1e-12, f"row not found in targets (distance {float(nearest.max()):.3e})"
    return index


@pytest.mark.parametrize(
    "make_grid",
    [
        lambda: grid_s1(7),
        lambda: fibonacci_grid_s2(1),
        lambda: fibonacci_grid_s2(33),
        lambda: repulsion_grid_s2(17, steps=20),
        *[(lambda num=num: polyhedron_grid_s2(num)) for num, _ in POLYHEDRON_GROUPS],
    ],
    ids=["s1", "fibonacci-1", "fibonacci-33", "repulsion", *[f"polyhedron-{num}" for num, _ in POLYHEDRON_GROUPS]],
)
def test_direction_grids_are_unit_vectors(make_grid) -> None:
    grid = make_grid()
    assert grid.dtype == torch.float64
    torch.testing.assert_close(grid.norm(dim=-1), torch.ones(grid.shape[0], dtype=torch.float64), atol=1e-14, rtol=0)


@pytest.mark.parametrize(
    "make_grid",
    [
        lambda: grid_s1(5),
        lambda: fibonacci_grid_s2(20),
        lambda: repulsion_grid_s2(20, steps=20),
        lambda: polyhedron_grid_s2(12),
        lambda: grid_so2(6),
        lambda: grid_so3(10, steps=20),
        lambda: grid_so3(24),
    ],
    ids=["s1", "fibonacci", "repulsion", "polyhedron", "so2", "so3-repulsion", "so3-group"],
)
def test_grids_are_deterministic(make_grid) -> None:
    torch.manual_seed(1)
    first = make_grid()
    torch.manual_seed(2)
    assert torch.equal(first, make_grid())


def test_grids_have_requested_size_and_dtype() -> None:
    assert grid_s1(6, dtype=torch.float32).shape == (6, 2)
    assert grid_s1(6, dtype=torch.float32).dtype == torch.float32
    assert fibonacci_grid_s2(9, dtype=torch.float32).dtype == torch.float32
    assert repulsion_grid_s2(9, steps=5, dtype=torch.float32).dtype == torch.float32
    assert polyhedron_grid_s2(8, dtype=torch.float32).dtype == torch.float32
    assert grid_so2(4).shape == (4, 2, 2)
    assert grid_so3(7, steps=5, dtype=torch.float32).shape == (7, 3, 3)
    assert grid_so3(7, steps=5, dtype=torch.float32).dtype == torch.float32


def test_grid_s1_is_evenly_spaced_from_x_axis() -> None:
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(grid_s1(4), expected, atol=1e-15, rtol=0)


def test_fibonacci_grid_matches_formula() -> None:
    num = 10
    grid = fibonacci_grid_s2(num)
    for k in (0, 1, 7):
        theta = (math.pi * k * (1.0 + math.sqrt(5.0))) % (2.0 * math.pi)
        phi = math.acos(1.0 - 2.0 * (k + 0.5) / num)
        expected = torch.tensor(
            [math.cos(theta) * math.sin(phi), math.sin(theta) * math.sin(phi), math.cos(phi)], dtype=torch.float64
        )
        torch.testing.assert_close(grid[k], expected, atol=1e-14, rtol=0)
    # z-coordinates are evenly spaced in (-1, 1)
    torch.testing.assert_close(
        grid[:, 2], 1.0 - 2.0 * (torch.arange(num, dtype=torch.float64) + 0.5) / num, atol=1e-14, rtol=0
    )


def test_repulsion_grid_without_steps_is_fibonacci() -> None:
    assert torch.equal(repulsion_grid_s2(15, steps=0), fibonacci_grid_s2(15))


def test_repulsion_grid_spreads_points_further_than_fibonacci() -> None:
    def min_distance(grid: torch.Tensor) -> float:
        distance = torch.cdist(grid, grid) + 10.0 * torch.eye(grid.shape[0], dtype=grid.dtype)
        return float(distance.min())

    assert min_distance(repulsion_grid_s2(12, steps=50)) > min_distance(fibonacci_grid_s2(12))


@pytest.mark.parametrize(("num", "group_name"), POLYHEDRON_GROUPS)
def test_polyhedron_grid_is_closed_under_its_rotation_group(num: int, group_name: str) -> None:
    grid = polyhedron_grid_s2(num)  # [O, 3]
    for rotation in rotation_group(group_name):
        index = _matching(grid @ rotation.T, grid)
        assert sorted(index.tolist()) == list(range(num)), "the rotation must permute the vertices"


def test_polyhedron_grid_rejects_sizes_without_platonic_solid() -> None:
    with pytest.raises(ValueError, match="No Platonic solid has 5 vertices"):
        polyhedron_grid_s2(5)


@pytest.mark.parametrize(("name", "order"), GROUP_ORDERS.items())
def test_rotation_group_is_a_group_of_rotations(name: str, order: int) -> None:
    group = rotation_group(name)  # [G, 3, 3]
    assert group.shape == (order, 3, 3)
    _assert_rotations(group)
    assert torch.equal(group[0], torch.eye(3, dtype=torch.float64))
    # elements are distinct
    flat = group.flatten(1)  # [G, 9]
    distance = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")  # [G, G]
    distance = distance + 10.0 * torch.eye(order, dtype=flat.dtype)
    assert float(distance.min()) > 1e-3
    # closed under products and inverses
    products = (group[:, None] @ group[None, :]).flatten(0, 1)  # [G·G, 3, 3]
    _matching(products, group)
    _matching(group.transpose(-1, -2), group)


def test_rotation_group_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="Unknown rotation group 'dihedral'"):
        rotation_group("dihedral")


@pytest.mark.parametrize(("num", "name"), [(order, name) for name, order in GROUP_ORDERS.items()])
def test_grid_so3_of_group_size_is_the_group(num: int, name: str) -> None:
    assert torch.equal(grid_so3(num), rotation_group(name))


@pytest.mark.parametrize("num", [1, 2, 7, 10])
def test_grid_so3_of_other_sizes_is_rotations(num: int) -> None:
    grid = grid_so3(num, steps=20)
    assert grid.shape == (num, 3, 3)
    _assert_rotations(grid)


def test_grid_so2_is_rotations_with_grid_s1_as_first_axis() -> None:
    grid = grid_so2(5)
    _assert_rotations(grid)
    torch.testing.assert_close(grid[:, :, 0], grid_s1(5), atol=0, rtol=0)


@pytest.mark.parametrize(
    "call",
    [lambda: grid_s1(0), lambda: fibonacci_grid_s2(-1), lambda: repulsion_grid_s2(0), lambda: grid_so3(0),
     lambda: grid_so2(0), lambda: fibonacci_grid_s2(2.5)],  # fmt: skip
    ids=["s1", "fibonacci", "repulsion", "so3", "so2", "float"],
)
def test_grids_reject_non_positive_sizes(call) -> None:
    with pytest.raises(ValueError, match="num must be a positive integer"):
        call()


def test_axis_angle_to_matrix_rotates_about_axis() -> None:
    axis = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    rotation = axis_angle_to_matrix(axis, 0.7)
    _assert_rotations(rotation[None])
    torch.testing.assert_close(rotation @ axis, axis, atol=1e-14, rtol=0)
    assert math.isclose((torch.trace(rotation) - 1.0) / 2.0, math.cos(0.7), abs_tol=1e-14)


def test_quaternion_to_matrix_identifies_q_and_minus_q() -> None:
    quaternion = torch.randn(6, 4, dtype=torch.float64)
    rotation = quaternion_to_matrix(quaternion)
    _assert_rotations(rotation)
    torch.testing.assert_close(quaternion_to_matrix(-quaternion), rotation, atol=1e-14, rtol=0)
    half_turn = quaternion_to_matrix(torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(half_turn, torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)))
