"""The spaces a Ponita network can work in: one class per kind of space, one registry line per name.

A space is a small module that declares its geometry (dimension, fibre bundle or not, the per-node
frame it reads, how many invariants its kernels see), owns its orientation grid (a float64 buffer,
saved in the state dict), turns the input point cloud into the points the network convolves over,
computes their bi-invariant attributes, builds its convolution and reads the result back out as
scalars and vectors per input node. :class:`ponita.Ponita` asks the space and never its name, so a
new space is one :class:`Space` subclass plus one line in :data:`_REGISTRY`.
"""

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

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
)
from ponita.ops import require
from ponita.graph._edge_lifting import check_liftable, lift_edges_unchecked
from ponita.nn import FibreBundleConv, PointCloudConv, lift_scalars, lift_vectors, scalar_readout, vector_readout
from ponita.ops import scatter_mean

S2_GRIDS = ("fibonacci", "repulsion", "polyhedron")
"""Names accepted by ``Ponita(grid=...)`` for S² grids."""

DEFAULT_NUM_ORI = 16
"""Grid size of a fibre bundle when ``num_ori`` is ``None``."""


class SpaceOptions(NamedTuple):
    """The options of :class:`ponita.PonitaConfig` that shape a space."""

    num_ori: int | None = None
    complete: bool = False
    separable: bool = True
    grid: str = "fibonacci"


class Points(NamedTuple):
    """The points a network convolves over, derived from the input nodes.

    Attributes:
        pos: positions ``[M, n]``.
        features: lifted input features ``[M, F']`` or ``[M, O, F']``.
        edge_index: edges between the points ``[2, E]``.
        node_index: input node of each point ``[M]``, or ``None`` when the points are the nodes.
        ori: unit orientation of each oriented point ``[M, n]``, else ``None``.
        rot: rotation of each pose ``[M, n, n]`` (columns = local axes), else ``None``.
    """

    pos: Tensor
    features: Tensor
    edge_index: Tensor
    node_index: Tensor | None = None
    ori: Tensor | None = None
    rot: Tensor | None = None


class Space(nn.Module):
    """Base class of the spaces; see :data:`SPACES` for the names and :class:`ponita.PonitaConfig`.

    Class attributes (known before construction, so configs can be checked from the name alone):
        is_fibre_bundle: features live on a grid of orientations at every point.
        has_vectors: vector inputs and outputs are possible.
        frame_field: the per-node input frame the space reads, ``"ori"`` ``[N, n]`` or ``"rot"``
            ``[N, n, n]``, or ``None``.
        points_from_edges: the points convolved over are made from the edges (lifted spaces), so
            adding edges changes the function even where the radius window is zero.

    Instance attributes: ``dim`` (n), ``num_ori`` (grid size; 1 for point clouds),
    ``num_invariants`` (spatial attributes per edge), ``num_fibre_invariants`` (attributes per pair of
    grid elements of a separable bundle, else 0) and ``channels_per_vector`` (scalar channels one
    input vector becomes: 1, or n for poses).
    """

    is_fibre_bundle: ClassVar[bool] = False
    has_vectors: ClassVar[bool] = True
    frame_field: ClassVar[str | None] = None
    points_from_edges: ClassVar[bool] = False

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_ori = 1
        self.num_invariants = 0
        self.num_fibre_invariants = 0
        self.channels_per_vector = 1

    def frame_shape(self, num_nodes: int) -> tuple[int, ...]:
        """Shape of the per-node frames ``data.<frame_field>`` this space reads."""
        return (num_nodes, self.dim) if self.frame_field == "ori" else (num_nodes, self.dim, self.dim)

    def check(self, pos: Tensor, frames: Tensor | None, edge_index: Tensor) -> None:
        """Checks what this space needs of the (already shape-checked) input; no host sync."""

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        """The points to convolve over, with their lifted input features; a space whose points are made from
        the edges (:attr:`points_from_edges`) connects them along ``connect_index`` (``None``: ``edge_index``)."""
        raise NotImplementedError

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        """Spatial attributes ``[E, (O, (O,)) K]`` of the receiver-sorted ``edge_index``, and fibre
        attributes ``[O, O, K_f]`` of a separable bundle (else ``None``)."""
        raise NotImplementedError

    def conv(self, channels: int, basis_dim: int, depthwise: bool) -> nn.Module:
        """A new convolution of this space, ``conv(x, kernel_inputs)``."""
        return PointCloudConv(channels, basis_dim, depthwise=depthwise)

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        """Scalars ``[N, S]`` and vectors ``[N, V, n]`` per input node from the final features ``f``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}" + (f", num_ori={self.num_ori}" if self.is_fibre_bundle else "")


class EuclideanSpace(Space):
    """R^n point cloud (PNITA): the only attribute is the distance; features are scalars."""

    has_vectors = False

    def __init__(self, dim: int, options: SpaceOptions) -> None:
        super().__init__(dim)
        self.num_invariants = 1

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        return Points(pos, x, edge_index)

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, None]:
        return invariants_rn(points.pos, edge_index), None  # [E, 1]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        return f, f.new_zeros(f.shape[0], 0, self.dim)  # [N, S], [N, 0, n]


class OrientedPointCloud(Space):
    """R^n×S^(n−1) point cloud whose orientations are given per node (``data.ori``), e.g. normals."""

    frame_field = "ori"

    def __init__(self, dim: int, options: SpaceOptions) -> None:
        super().__init__(dim)
        self.complete = options.complete
        self.num_invariants = 3 + (self.complete * (2 if dim == 3 else 1))
        self._invariants = invariants_r3s2_point_cloud if dim == 3 else invariants_r2s1_point_cloud

    def check(self, pos: Tensor, frames: Tensor | None, edge_index: Tensor) -> None:
        tolerance = _frame_tolerance(pos.dtype)
        bad = ~torch.isfinite(frames).all(-1) | ((frames.norm(dim=-1) - 1.0).abs() > tolerance)  # [N]
        message = "data.ori must hold unit vectors; normalise them, ori / ori.norm(dim=-1, keepdim=True)."
        require(~bad.any(), message, lambda: _first_bad_frame("ori", bad, "unit vector", message))

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        features = torch.cat([x, torch.einsum("nvd,nd->nv", vec, frames)], dim=-1)  # [N, F + V]
        return Points(pos, features, edge_index, ori=frames)

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, None]:
        return self._invariants(points.pos, points.ori, edge_index, self.complete), None  # [E, K]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        return f[:, :num_scalars], f[:, num_scalars:, None] * points.ori[:, None, :]  # [M, S], [M, V, n]


class LiftedSpace(OrientedPointCloud):
    """R^n×S^(n−1) point cloud made by lifting every directed edge to an oriented point.

    The lifted points are an :class:`OrientedPointCloud` whose outputs are averaged back to atoms. They are
    connected along the lifted edges, or along another graph of the atoms (the network's own graph with
    ``PonitaConfig.connect_lifted="all"``: PONITA's QM9 point cloud of bonds, all connected).
    """

    frame_field = None
    points_from_edges = True

    def check(self, pos: Tensor, frames: Tensor | None, edge_index: Tensor) -> None:
        check_liftable(pos, edge_index)

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        lifted = lift_edges_unchecked(pos, edge_index, connect_index)
        index = lifted.node_index  # [M]
        points = super().points(lifted.pos, x[index], vec[index], lifted.ori, lifted.edge_index, None)
        return points._replace(node_index=index)

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        scalars, vectors = super().readout(f, num_scalars, points, num_nodes)  # [M, S], [M, V, n]
        return scatter_mean(scalars, points.node_index, num_nodes), scatter_mean(vectors, points.node_index, num_nodes)


class PosePointCloud(Space):
    """SE(n) point cloud of poses: every node has a rotation (``data.rot``, columns = local axes)."""

    frame_field = "rot"

    def __init__(self, dim: int, options: SpaceOptions) -> None:
        super().__init__(dim)
        self.channels_per_vector = dim
        self.num_invariants = dim + (2 if dim == 2 else 6)

    def check(self, pos: Tensor, frames: Tensor | None, edge_index: Tensor) -> None:
        identity = torch.eye(self.dim, dtype=frames.dtype, device=frames.device)
        orthogonal = (frames.transpose(-1, -2) @ frames - identity).abs().amax(dim=(-1, -2)) <= _frame_tolerance(pos.dtype)
        bad = ~torch.isfinite(frames).flatten(1).all(-1) | ~orthogonal | (torch.linalg.det(frames) <= 0)  # [N]
        message = "data.rot must hold rotation matrices; give rotation matrices (orthonormal columns, determinant +1)."
        require(~bad.any(), message, lambda: _first_bad_frame("rot", bad, "rotation", message))

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        local_vec = torch.einsum("nvd,ndk->nvk", vec, frames).flatten(-2)  # [N, V·n]: Rᵀ v
        return Points(pos, torch.cat([x, local_vec], dim=-1), edge_index, rot=frames)

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, None]:
        return invariants_se_point_cloud(points.pos, points.rot, edge_index), None  # [E, K]

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        local = f[:, num_scalars:].unflatten(-1, (-1, self.dim))  # [N, V, n]
        return f[:, :num_scalars], torch.einsum("ndk,nvk->nvd", points.rot, local)  # [N, S], [N, V, n]: R f


class FibreBundle(Space):
    """Base of the fibre bundles: features on a grid of ``num_ori`` orientations or rotations at every point.

    Subclasses set ``self.grid`` (a float64 buffer, cast to the input's dtype in every forward).
    """

    is_fibre_bundle = True

    def __init__(self, dim: int, options: SpaceOptions, grid: Tensor) -> None:
        super().__init__(dim)
        self.separable = options.separable
        self.num_ori = grid.shape[0]
        self.register_buffer("grid", grid)  # [O, n] or [O, n, n], float64

    def points(self, pos: Tensor, x: Tensor, vec: Tensor, frames: Tensor | None, edge_index: Tensor,
               connect_index: Tensor | None) -> Points:
        grid = self.grid.to(pos.dtype)
        features = torch.cat([lift_scalars(x, self.num_ori), lift_vectors(vec, grid)], dim=-1)  # [N, O, F + V·c]
        return Points(pos, features, edge_index)

    def conv(self, channels: int, basis_dim: int, depthwise: bool) -> nn.Module:
        return FibreBundleConv(channels, basis_dim, separable=self.separable, depthwise=depthwise)

    def readout(self, f: Tensor, num_scalars: int, points: Points, num_nodes: int) -> tuple[Tensor, Tensor]:
        grid = self.grid.to(f.dtype)
        return scalar_readout(f[..., :num_scalars]), vector_readout(f[..., num_scalars:], grid)


class PositionOrientationBundle(FibreBundle):
    """R^n×S^(n−1) fibre bundle: every point carries features on a grid of directions (PONITA)."""

    def __init__(self, dim: int, options: SpaceOptions) -> None:
        num_ori = options.num_ori or DEFAULT_NUM_ORI
        grids = {"fibonacci": fibonacci_grid_s2, "repulsion": repulsion_grid_s2, "polyhedron": polyhedron_grid_s2}
        super().__init__(dim, options, grid_s1(num_ori) if dim == 2 else grids[options.grid](num_ori))
        self.complete = options.complete
        if self.separable:
            self.num_invariants = 2
            self.num_fibre_invariants = 1 + (self.complete and dim == 2)
        else:
            self.num_invariants = 3 + (self.complete * (2 if dim == 3 else 1))

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        grid = self.grid.to(points.pos.dtype)
        if not self.separable:
            full = invariants_r3s2_fibre_bundle_full if self.dim == 3 else invariants_r2s1_fibre_bundle_full
            return full(points.pos, grid, edge_index, self.complete), None  # [E, O, O, K]
        if self.dim == 3:
            return invariants_r3s2_fibre_bundle(points.pos, grid, edge_index)  # [E, O, 2], [O, O, 1]
        return invariants_r2s1_fibre_bundle(points.pos, grid, edge_index, self.complete)


class SpecialEuclideanBundle(FibreBundle):
    """SE(n) fibre bundle: every point carries features on a grid of rotations."""

    def __init__(self, dim: int, options: SpaceOptions) -> None:
        num_ori = options.num_ori or DEFAULT_NUM_ORI
        super().__init__(dim, options, grid_so2(num_ori) if dim == 2 else grid_so3(num_ori))
        self.channels_per_vector = dim
        rotation_dim = 2 if dim == 2 else 6
        if self.separable:
            self.num_invariants, self.num_fibre_invariants = dim, rotation_dim
        else:
            self.num_invariants = dim + rotation_dim

    def invariants(self, points: Points, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        spatial, fibre = invariants_se_fibre_bundle(points.pos, self.grid.to(points.pos.dtype), edge_index)
        if self.separable:
            return spatial, fibre  # [E, O, n], [O, O, R]
        num_edges, num_ori = spatial.shape[:2]
        full = torch.cat(
            [spatial[:, :, None].expand(-1, -1, num_ori, -1), fibre[None].expand(num_edges, -1, -1, -1)], dim=-1
        )  # [E, O, O, n + R]
        return full, None


_REGISTRY: dict[str, tuple[type[Space], int]] = {
    "R2": (EuclideanSpace, 2),
    "R3": (EuclideanSpace, 3),
    "R2xS1": (PositionOrientationBundle, 2),
    "R3xS2": (PositionOrientationBundle, 3),
    "R2xS1-lifted": (LiftedSpace, 2),
    "R3xS2-lifted": (LiftedSpace, 3),
    "R2xS1-points": (OrientedPointCloud, 2),
    "R3xS2-points": (OrientedPointCloud, 3),
    "SE2": (SpecialEuclideanBundle, 2),
    "SE3": (SpecialEuclideanBundle, 3),
    "SE2-points": (PosePointCloud, 2),
    "SE3-points": (PosePointCloud, 3),
}
"""Every space: name → (class, dimension). Adding a space is one class and one line here."""

SPACES = tuple(_REGISTRY)
"""Names accepted by ``Ponita(space=...)``."""


def space_spec(name: str) -> tuple[type[Space], int]:
    """The class and dimension of the space called ``name``; ``ValueError`` naming the choices if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown space {name!r}; choose one of {SPACES}.")
    return _REGISTRY[name]


def make_space(name: str, options: SpaceOptions) -> Space:
    """The :class:`Space` called ``name`` (one of :data:`SPACES`), for options that :class:`ponita.PonitaConfig`
    has checked."""
    space_class, dim = space_spec(name)
    return space_class(dim, options)


def _frame_tolerance(dtype: torch.dtype) -> float:
    return 1e-3 if dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8


def _first_bad_frame(field: str, bad: Tensor, what: str, message: str) -> str:
    index = int(bad.nonzero()[0])
    return f"data.{field}[{index}] is not a valid {what}; {message.split('; ', 1)[-1]}"
