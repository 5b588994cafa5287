r"""Deterministic orientation grids on S^1, S^2, SO(2) and SO(3).

Every grid is a fixed function of its arguments (a formula, or an optimisation from a fixed seed),
so a network that registers its grid as a buffer computes the same function in every process.
"""

import math

import torch
from torch import Tensor

from ponita.geometry._rotations import axis_angle_to_matrix, quaternion_to_matrix

_GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0


def grid_s1(num: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Uniform grid on the circle, :math:`o_k = (\cos\theta_k, \sin\theta_k)`, :math:`\theta_k = 2\pi k / n`.

    Args:
        num: number of directions :math:`n \geq 1`.
        dtype: floating dtype of the result.

    Returns:
        Unit vectors.

    Shapes:
        → ``[num, 2]``

    Example:
        >>> grid_s1(4).round(decimals=6).abs()
        tensor([[1., 0.],
                [0., 1.],
                [1., 0.],
                [0., 1.]], dtype=torch.float64)
    """
    _check_positive(num, "num")
    angles = 2.0 * math.pi * torch.arange(num, dtype=torch.float64) / num  # [O]
    return torch.stack([angles.cos(), angles.sin()], dim=-1).to(dtype)  # [O, 2]


def fibonacci_grid_s2(num: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Fibonacci lattice on the sphere (offset 0.5), as in the PONITA ports.

    .. math::
        \theta_k = \pi k (1 + \sqrt 5) \bmod 2\pi, \qquad
        \phi_k = \arccos\!\left(1 - \frac{2(k + 0.5)}{n}\right), \qquad
        o_k = (\cos\theta_k \sin\phi_k,\ \sin\theta_k \sin\phi_k,\ \cos\phi_k)

    Args:
        num: number of directions :math:`n \geq 1`.
        dtype: floating dtype of the result.

    Returns:
        Unit vectors.

    Shapes:
        → ``[num, 3]``

    Example:
        >>> fibonacci_grid_s2(20).norm(dim=-1).allclose(torch.ones(20, dtype=torch.float64))
        True
    """
    _check_positive(num, "num")
    k = torch.arange(num, dtype=torch.float64)  # [O]
    theta = torch.remainder(math.pi * k * (1.0 + math.sqrt(5.0)), 2.0 * math.pi)  # [O]
    phi = torch.arccos(1.0 - 2.0 * (k + 0.5) / num)  # [O]
    grid = torch.stack([theta.cos() * phi.sin(), theta.sin() * phi.sin(), phi.cos()], dim=-1)
    return grid.to(dtype)  # [O, 3]


def repulsion_grid_s2(
    num: int, steps: int = 200, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Tensor:
    r"""Fibonacci lattice refined by minimising a Coulomb energy on the sphere.

    Starting from :func:`fibonacci_grid_s2`, slightly perturbed by noise from ``seed``, runs
    ``steps`` of Adam on :math:`\sum_{k \neq l} \|o_k - o_l\|^{-2}` and projects back onto the sphere
    after every step. Deterministic for a given ``(num, steps, seed)``.

    Args:
        num: number of directions.
        steps: optimisation steps (0 returns the Fibonacci lattice).
        seed: seed of the initial perturbation.
        dtype: floating dtype of the result.

    Returns:
        Unit vectors.

    Shapes:
        → ``[num, 3]``

    Example:
        >>> repulsion_grid_s2(12, steps=50).shape
        torch.Size([12, 3])
    """
    _check_positive(num, "num")
    grid = fibonacci_grid_s2(num)  # [O, 3]
    if steps == 0 or num == 1:
        return grid.to(dtype)
    generator = torch.Generator().manual_seed(seed)
    grid = grid + 1e-3 * torch.randn(grid.shape, generator=generator, dtype=torch.float64)
    return _repel(grid, steps, antipodal=False).to(dtype)


POLYHEDRON_SIZES = (4, 6, 8, 12, 20)
"""The vertex counts of the Platonic solids: the sizes :func:`polyhedron_grid_s2` offers."""


def polyhedron_grid_s2(num: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Vertices of a Platonic solid: a grid that a finite rotation group maps onto itself.

    ``num`` = 4 (tetrahedron), 6 (octahedron), 8 (cube), 12 (icosahedron) or 20 (dodecahedron). The
    tetrahedron is invariant under :func:`rotation_group` ``"tetrahedral"``, octahedron and cube
    under ``"octahedral"``, icosahedron and dodecahedron under ``"icosahedral"``, so networks on
    these grids are exactly equivariant to those rotations.

    Args:
        num: number of vertices.
        dtype: floating dtype of the result.

    Returns:
        Unit vectors.

    Raises:
        ValueError: if no Platonic solid has ``num`` vertices.

    Shapes:
        → ``[num, 3]``

    Example:
        >>> polyhedron_grid_s2(6).abs().sum(dim=0)
        tensor([2., 2., 2.], dtype=torch.float64)
    """
    phi = _GOLDEN_RATIO
    if num == 4:
        vertices = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]
    elif num == 6:
        vertices = _cyclic([(1, 0, 0), (-1, 0, 0)])
    elif num == 8:
        vertices = [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
    elif num == 12:
        vertices = _cyclic([(0, a, b * phi) for a in (1, -1) for b in (1, -1)])
    elif num == 20:
        cube = [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
        vertices = cube + _cyclic([(0, a * phi, b / phi) for a in (1, -1) for b in (1, -1)])
    else:
        raise ValueError(
            f"No Platonic solid has {num} vertices; use one of {POLYHEDRON_SIZES}, or a Fibonacci grid."
        )
    grid = torch.tensor(vertices, dtype=torch.float64)  # [O, 3]
    return (grid / grid.norm(dim=-1, keepdim=True)).to(dtype)


def grid_so2(num: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Uniform grid of planar rotations, :math:`R_k = [o_k, o_k^\perp]` with :math:`o_k` from :func:`grid_s1`.

    Args:
        num: number of rotations.
        dtype: floating dtype of the result.

    Returns:
        Rotation matrices (columns are the rotated axes).

    Shapes:
        → ``[num, 2, 2]``

    Example:
        >>> grid_so2(3).det().allclose(torch.ones(3, dtype=torch.float64))
        True
    """
    o = grid_s1(num)  # [O, 2]
    o_perp = torch.stack([-o[:, 1], o[:, 0]], dim=-1)  # [O, 2]
    return torch.stack([o, o_perp], dim=-1).to(dtype)  # [O, 2, 2]


def rotation_group(name: str, dtype: torch.dtype = torch.float64) -> Tensor:
    """The rotation group of a Platonic solid, as matrices.

    Args:
        name: ``"tetrahedral"`` (12 elements), ``"octahedral"`` (24) or ``"icosahedral"`` (60).
        dtype: floating dtype of the result.

    Returns:
        All group elements; the first is the identity.

    Raises:
        ValueError: for an unknown group name.

    Shapes:
        → ``[G, 3, 3]``

    Example:
        >>> rotation_group("icosahedral").shape
        torch.Size([60, 3, 3])
    """
    cyclic = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    if name == "tetrahedral":
        generators, order = [cyclic, torch.diag(torch.tensor([1.0, -1.0, -1.0]))], 12
    elif name == "octahedral":
        quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        generators, order = [cyclic, quarter_turn], 24
    elif name == "icosahedral":
        axis = torch.tensor([0.0, 1.0, _GOLDEN_RATIO], dtype=torch.float64)
        generators, order = [cyclic, axis_angle_to_matrix(axis, 2.0 * math.pi / 5.0)], 60
    else:
        raise ValueError(
            f"Unknown rotation group {name!r}; choose 'tetrahedral', 'octahedral' or 'icosahedral'."
        )
    group = _closure([g.to(torch.float64) for g in generators])  # [G, 3, 3]
    if group.shape[0] != order:
        raise RuntimeError(f"{name} group closure gave {group.shape[0]} elements, expected {order}.")
    return group.to(dtype)


def grid_so3(num: int, steps: int = 300, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Grid of 3D rotations for SE(3) fibre bundles.

    ``num`` = 12, 24 or 60 gives the tetrahedral, octahedral or icosahedral rotation group, which is
    exactly closed under its own rotations. Other sizes are unit quaternions that repel each other
    (energy :math:`\sum_{k\neq l} (1 - |q_k \cdot q_l|)^{-1}`, which identifies :math:`q` and
    :math:`-q`), optimised from seeded random initial points; deterministic for given arguments.

    Args:
        num: number of rotations.
        steps: optimisation steps for sizes that are not a group.
        seed: seed of the initial quaternions.
        dtype: floating dtype of the result.

    Returns:
        Rotation matrices.

    Shapes:
        → ``[num, 3, 3]``

    Example:
        >>> grid_so3(24).shape, grid_so3(10).det().allclose(torch.ones(10, dtype=torch.float64))
        (torch.Size([24, 3, 3]), True)
    """
    _check_positive(num, "num")
    groups = {12: "tetrahedral", 24: "octahedral", 60: "icosahedral"}
    if num in groups:
        return rotation_group(groups[num], dtype)
    generator = torch.Generator().manual_seed(seed)
    quaternions = torch.randn(num, 4, generator=generator, dtype=torch.float64)  # [O, 4]
    if num > 1:
        quaternions = _repel(quaternions, steps, antipodal=True)
    return quaternion_to_matrix(quaternions).to(dtype)


def _check_positive(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _cyclic(points: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """All cyclic permutations of the coordinates of each point."""
    return [p for (a, b, c) in points for p in ((a, b, c), (b, c, a), (c, a, b))]


def _closure(generators: list[Tensor]) -> Tensor:
    """All products of the generators (a finite group), found by breadth-first search."""
    elements = [torch.eye(3, dtype=torch.float64)]
    keys = {_matrix_key(elements[0])}
    frontier = list(elements)
    while frontier:
        new_frontier = []
        for element in frontier:
            for generator in generators:
                product = generator @ element
                key = _matrix_key(product)
                if key not in keys:
                    keys.add(key)
                    elements.append(product)
                    new_frontier.append(product)
        frontier = new_frontier
    return torch.stack(elements)  # [G, 3, 3]


def _matrix_key(matrix: Tensor) -> tuple[int, ...]:
    return tuple(torch.round(matrix * 1e6).to(torch.int64).flatten().tolist())


def _repel(points: Tensor, steps: int, antipodal: bool) -> Tensor:
    """Spreads unit vectors by Adam on a repulsive energy, renormalising after every step."""
    points = (points / points.norm(dim=-1, keepdim=True)).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([points], lr=1e-2)
    off_diagonal = ~torch.eye(points.shape[0], dtype=torch.bool)
    for _ in range(steps):
        unit = points / points.norm(dim=-1, keepdim=True)
        cosine = unit @ unit.T  # [O, O]
        if antipodal:
            distance = 1.0 - cosine.abs()
        else:
            distance = 2.0 - 2.0 * cosine  # squared chord length
        energy = (1.0 / distance[off_diagonal].clamp(min=1e-12)).sum()
        optimizer.zero_grad()
        energy.backward()
        optimizer.step()
        with torch.no_grad():
            points /= points.norm(dim=-1, keepdim=True)
    return points.detach()
