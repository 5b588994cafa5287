"""The spaces a Ponita network can work in, each chosen once at construction.

A space turns the input point cloud into the points the network convolves over, computes their
bi-invariant attributes, and reads the result back out as scalars and vectors per input node.
"""

from typing import NamedTuple

import torch
from torch import Tensor

from ponita.geometry import (
    fibonacci_grid_s2,
    grid_s1,
    grid_so2,
    grid_so3,
    invariants_r2s1_fibre_bundle,
    invariants_r2s1_fibre_bundle_full,
    invariants_r2s1_point_cloud,
    invariants_r3s2_fibre_bundle,
    invariants_r3s2_fibre_bundle_full,
    invariants_r3s2_point_cloud,
    invariants_rn,
    invariants_se_fibre_bundle,
    invariants_se_point_cloud,
    polyhedron_grid_s2,
    repulsion_grid_s2,
    safe_norm,
)
from ponita.graph import lift_edges_to_oriented_points
from ponita.nn import lift_scalars, lift_vectors, scalar_readout, vector_readout
from ponita.ops import scatter_mean

SPACES = (
    "R2", "R3", "R2xS1", "R3xS2", "R2xS1-lifted", "R3xS2-lifted", "R2xS1-points", "R3xS2-points",
    "SE2", "SE3", "SE2-points", "SE3-points",
)
"""Names accepted by ``Ponita(space=...)``."""

S2_GRIDS = ("fibonacci", "repulsion", "polyhedron")
"""Names accepted by ``Ponita(grid=...)`` for S² grids."""


class Points(NamedTuple):
    """The points a network convolves over, derived from the input nodes.

    Attributes:
        pos: positions ``[M, n]``.
        ori: orientations ``[M, n]`` of oriented points, rotations ``[M, n, n]`` of poses, else ``None``.
        features: lifted input features ``[M, F']`` or ``[M, O, F']``.
        edge_index: edges between the points ``[2, E]``.
        node_index: input node of each point ``[M]``, or ``None`` when points are the nodes.
    """

    pos: Tensor
    ori: Tensor | None
    features: Tensor
    edge_index: Tensor
    node_index: Tensor | None


class Space:
    """Base class; subclasses fix the geometry. See :data:`SPACES`."""

    dim: int
    is_fibre_bundle: bool = False
    frame_key: str | None = None
    """Input field with a frame per node: ``"ori"`` ``[N, n]`` or ``"rot"`` ``[N, n, n]``."""
    num_invariants: int
    num_fibre_invariants: int = 0
    channels_per_vector: int = 1

    def grid(self, num_ori: int) -> Tensor | None:
        """The orientation grid (float64), or ``None`` for point clouds."""
        return None

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor | None
    ) -> Points:
        raise NotImplementedError

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor | None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def readout(
        self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class EuclideanSpace(Space):
    """R^n point cloud (PNITA): the only attribute is the distance; features are scalars."""

    num_invariants = 1

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor | None
    ) -> Points:
        return Points(pos, None, x, edge_index, None)

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor | None) -> tuple[Tensor, None]:
        return invariants_rn(points.pos, edge_index), None  # [E, 1]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor | None):
        return f, f.new_zeros(f.shape[0], 0, self.dim)  # [N, S], [N, 0, n]


class OrientedPointCloud(Space):
    """R^n×S^(n−1) point cloud whose orientations are given per node (``data.ori``), e.g. normals."""

    frame_key = "ori"

    def __init__(self, dim: int, complete: bool) -> None:
        self.dim, self.complete = dim, complete
        self.num_invariants = 3 + (complete * (2 if dim == 3 else 1))
        self._invariants = invariants_r3s2_point_cloud if dim == 3 else invariants_r2s1_point_cloud

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor | None
    ) -> Points:
        features = torch.cat([x, torch.einsum("nvd,nd->nv", vec, frames)], dim=-1)  # [N, F + V]
        return Points(pos, frames, features, edge_index, None)

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor | None) -> tuple[Tensor, None]:
        return self._invariants(points.pos, points.ori, edge_index, self.complete), None  # [E, K]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor | None):
        return f[:, :num_scalars], f[:, num_scalars:, None] * points.ori[:, None, :]  # [M, S], [M, V, n]


class LiftedSpace(OrientedPointCloud):
    """R^n×S^(n−1) point cloud made by lifting every directed edge to an oriented point.

    The lifted points are an :class:`OrientedPointCloud` whose outputs are averaged back to atoms.
    """

    frame_key = None

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor | None
    ) -> Points:
        lifted = lift_edges_to_oriented_points(pos, edge_index)
        index = lifted.node_index  # [M]
        points = super().points(lifted.pos, x[index], vec[index], lifted.ori, lifted.edge_index, grid)
        return points._replace(node_index=index)

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor | None):
        scalars, vectors = super().readout(f, num_scalars, points, num_nodes, grid)  # [M, S], [M, V, n]
        return scatter_mean(scalars, points.node_index, num_nodes), scatter_mean(vectors, points.node_index, num_nodes)


class PosePointCloud(Space):
    """SE(n) point cloud of poses: every node has a rotation (``data.rot``, columns = local axes)."""

    frame_key = "rot"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.channels_per_vector = dim
        self.num_invariants = dim + (2 if dim == 2 else 6)

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor | None
    ) -> Points:
        local_vec = torch.einsum("nvd,ndk->nvk", vec, frames).flatten(-2)  # [N, V·n]: Rᵀ v
        return Points(pos, frames, torch.cat([x, local_vec], dim=-1), edge_index, None)

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor | None) -> tuple[Tensor, None]:
        return invariants_se_point_cloud(points.pos, points.ori, edge_index), None  # [E, K]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor | None):
        local = f[:, num_scalars:].unflatten(-1, (-1, self.dim))  # [N, V, n]
        return f[:, :num_scalars], torch.einsum("ndk,nvk->nvd", points.ori, local)  # [N, S], [N, V, n]: R f


class PositionOrientationBundle(Space):
    """R^n×S^(n−1) fibre bundle: every point carries features on a grid of directions (PONITA)."""

    is_fibre_bundle = True
    num_invariants = 2

    def __init__(self, dim: int, complete: bool, separable: bool, grid_kind: str) -> None:
        self.dim, self.complete, self.separable, self.grid_kind = dim, complete, separable, grid_kind
        if separable:
            self.num_fibre_invariants = 1 + (complete and dim == 2)
        else:
            self.num_invariants = 3 + (complete * (2 if dim == 3 else 1))

    def grid(self, num_ori: int) -> Tensor:
        if self.dim == 2:
            return grid_s1(num_ori)
        if self.grid_kind == "fibonacci":
            return fibonacci_grid_s2(num_ori)
        if self.grid_kind == "repulsion":
            return repulsion_grid_s2(num_ori)
        return polyhedron_grid_s2(num_ori)

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor
    ) -> Points:
        features = torch.cat([lift_scalars(x, grid.shape[0]), lift_vectors(vec, grid)], dim=-1)  # [N, O, F + V]
        return Points(pos, None, features, edge_index, None)

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor) -> tuple[Tensor, Tensor | None]:
        if not self.separable:
            full = invariants_r3s2_fibre_bundle_full if self.dim == 3 else invariants_r2s1_fibre_bundle_full
            return full(points.pos, grid, edge_index, self.complete), None  # [E, O, O, K]
        if self.dim == 3:
            return invariants_r3s2_fibre_bundle(points.pos, grid, edge_index)  # [E, O, 2], [O, O, 1]
        return invariants_r2s1_fibre_bundle(points.pos, grid, edge_index, self.complete)

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor):
        return scalar_readout(f[..., :num_scalars]), vector_readout(f[..., num_scalars:], grid)


class SpecialEuclideanBundle(Space):
    """SE(n) fibre bundle: every point carries features on a grid of rotations."""

    is_fibre_bundle = True

    def __init__(self, dim: int, separable: bool) -> None:
        self.dim, self.separable = dim, separable
        self.channels_per_vector = dim
        rotation_dim = 2 if dim == 2 else 6
        if separable:
            self.num_invariants, self.num_fibre_invariants = dim, rotation_dim
        else:
            self.num_invariants = dim + rotation_dim

    def grid(self, num_ori: int) -> Tensor:
        return grid_so2(num_ori) if self.dim == 2 else grid_so3(num_ori)

    def points(
        self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor, grid: Tensor
    ) -> Points:
        features = torch.cat([lift_scalars(x, grid.shape[0]), lift_vectors(vec, grid)], dim=-1)  # [N, O, F + V·n]
        return Points(pos, None, features, edge_index, None)

    def invariants(self, points: Points, edge_index: Tensor, grid: Tensor) -> tuple[Tensor, Tensor | None]:
        spatial, fibre = invariants_se_fibre_bundle(points.pos, grid, edge_index)  # [E, O, n], [O, O, R]
        if self.separable:
            return spatial, fibre
        num_edges, num_ori = spatial.shape[:2]
        full = torch.cat(
            [spatial[:, :, None].expand(-1, -1, num_ori, -1), fibre[None].expand(num_edges, -1, -1, -1)], dim=-1
        )  # [E, O, O, n + R]
        return full, None

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int, grid: Tensor):
        return scalar_readout(f[..., :num_scalars]), vector_readout(f[..., num_scalars:], grid)


def make_space(name: str, complete: bool, separable: bool, grid_kind: str) -> Space:
    """The :class:`Space` called ``name`` (one of :data:`SPACES`)."""
    if grid_kind not in S2_GRIDS:
        raise ValueError(f"Unknown grid {grid_kind!r}; choose one of {S2_GRIDS}.")
    if name in ("R2", "R3"):
        return EuclideanSpace(int(name[1]))
    if name in ("R2xS1-lifted", "R3xS2-lifted"):
        return LiftedSpace(int(name[1]), complete)
    if name in ("R2xS1-points", "R3xS2-points"):
        return OrientedPointCloud(int(name[1]), complete)
    if name in ("SE2-points", "SE3-points"):
        return PosePointCloud(int(name[2]))
    if name in ("R2xS1", "R3xS2"):
        return PositionOrientationBundle(int(name[1]), complete, separable, grid_kind)
    if name in ("SE2", "SE3"):
        return SpecialEuclideanBundle(int(name[2]), separable)
    raise ValueError(f"Unknown space {name!r}; choose one of {SPACES}.")


def edge_distance(pos: Tensor, edge_index: Tensor) -> Tensor:
    """Edge lengths for the cutoff window, ``[E]``."""
    return safe_norm(pos[edge_index[0]] - pos[edge_index[1]])
