"""Bi-invariant attributes: invariance, hand-computed values, completeness and degenerate geometry."""

import math

import pytest
import torch

from ponita.geometry import (
    NORM_EPS,
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
    relative_positions,
    safe_norm,
)
from ponita.geometry import random_rotation

F64 = torch.float64
EDGES = torch.tensor([[1, 2, 3, 0, 4, 2, 0], [0, 0, 1, 2, 3, 4, 4]])  # [2, E]


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True)


def _random_poses(dim: int, num: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    pos = torch.randn(num, dim, dtype=F64)  # [N, n]
    rot = torch.stack([random_rotation(dim) for _ in range(num)])  # [N, n, n]
    return pos, rot


# Each case: (dim, kind, fn) with kind telling how to transform the extra argument under R:
# "none" (positions only), "ori" (orientations o → R o), "grid" (grid o → R o), "rot" (R_i → R R_i),
# "rotgrid" (grid R_a → R R_a). Every function returns a tensor or a tuple of tensors.
CASES = {
    "rn-2d": (2, "none", invariants_rn),
    "rn-3d": (3, "none", invariants_rn),
    "r3s2-point-cloud": (3, "ori", lambda p, o, e: invariants_r3s2_point_cloud(p, o, e)),
    "r3s2-point-cloud-complete": (3, "ori", lambda p, o, e: invariants_r3s2_point_cloud(p, o, e, complete=True)),
    "r2s1-point-cloud": (2, "ori", lambda p, o, e: invariants_r2s1_point_cloud(p, o, e)),
    "r2s1-point-cloud-complete": (2, "ori", lambda p, o, e: invariants_r2s1_point_cloud(p, o, e, complete=True)),
    "r3s2-fibre-bundle": (3, "grid", invariants_r3s2_fibre_bundle),
    "r2s1-fibre-bundle": (2, "grid", lambda p, g, e: invariants_r2s1_fibre_bundle(p, g, e)),
    "r2s1-fibre-bundle-complete": (2, "grid", lambda p, g, e: invariants_r2s1_fibre_bundle(p, g, e, complete=True)),
    "r3s2-fibre-bundle-full": (3, "grid", lambda p, g, e: invariants_r3s2_fibre_bundle_full(p, g, e)),
    "r3s2-fibre-bundle-full-complete": (3, "grid", lambda p, g, e: invariants_r3s2_fibre_bundle_full(p, g, e, True)),
    "r2s1-fibre-bundle-full": (2, "grid", lambda p, g, e: invariants_r2s1_fibre_bundle_full(p, g, e)),
    "r2s1-fibre-bundle-full-complete": (2, "grid", lambda p, g, e: invariants_r2s1_fibre_bundle_full(p, g, e, True)),
    "se2-point-cloud": (2, "rot", invariants_se_point_cloud),
    "se3-point-cloud": (3, "rot", invariants_se_point_cloud),
    "se2-fibre-bundle": (2, "rotgrid", invariants_se_fibre_bundle),
    "se3-fibre-bundle": (3, "rotgrid", invariants_se_fibre_bundle),
}


def _call(
    kind: str, fn, pos: torch.Tensor, extra: torch.Tensor | None, edge_index: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    out = fn(pos, edge_index) if kind == "none" else fn(pos, extra, edge_index)
    return out if isinstance(out, tuple) else (out,)


def _extra(dim: int, kind: str, num_nodes: int) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind == "ori":
        return _unit(torch.randn(num_nodes, dim, dtype=F64))  # [N, n]
    if kind == "grid":
        return fibonacci_grid_s2(7) if dim == 3 else grid_s1(5)  # [O, n]
    if kind == "rot":
        return torch.stack([random_rotation(dim) for _ in range(num_nodes)])  # [N, n, n]
    return grid_so3(5, steps=10) if dim == 3 else grid_so2(5)  # [O, n, n]


def _rotate_extra(kind: str, extra: torch.Tensor | None, rotation: torch.Tensor) -> torch.Tensor | None:
    if extra is None:
        return None
    if kind in ("ori", "grid"):
        return extra @ rotation.T
    return rotation @ extra  # rotations: R R_i


@pytest.mark.parametrize("case", CASES)
def test_invariants_are_invariant_under_rotation_and_translation(case: str) -> None:
    dim, kind, fn = CASES[case]
    pos = torch.randn(5, dim, dtype=F64)  # [N, n]
    extra = _extra(dim, kind, 5)
    rotation, shift = random_rotation(dim), torch.randn(dim, dtype=F64)
    before = _call(kind, fn, pos, extra, EDGES)
    after = _call(kind, fn, pos @ rotation.T + shift, _rotate_extra(kind, extra, rotation), EDGES)
    for a, b in zip(before, after):
        assert a.dtype == F64
        assert float((a - b).abs().max()) < 1e-12


@pytest.mark.parametrize("case", CASES)
def test_invariants_have_documented_shapes(case: str) -> None:
    dim, kind, fn = CASES[case]
    extra = _extra(dim, kind, 5)
    out = _call(kind, fn, torch.randn(5, dim, dtype=F64), extra, EDGES)
    num_edges = EDGES.shape[1]
    num_ori = extra.shape[0] if extra is not None else 0
    expected = {
        "rn-2d": [(num_edges, 1)],
        "rn-3d": [(num_edges, 1)],
        "r3s2-point-cloud": [(num_edges, 3)],
        "r3s2-point-cloud-complete": [(num_edges, 5)],
        "r2s1-point-cloud": [(num_edges, 3)],
        "r2s1-point-cloud-complete": [(num_edges, 4)],
        "r3s2-fibre-bundle": [(num_edges, num_ori, 2), (num_ori, num_ori, 1)],
        "r2s1-fibre-bundle": [(num_edges, num_ori, 2), (num_ori, num_ori, 1)],
        "r2s1-fibre-bundle-complete": [(num_edges, num_ori, 2), (num_ori, num_ori, 2)],
        "r3s2-fibre-bundle-full": [(num_edges, num_ori, num_ori, 3)],
        "r3s2-fibre-bundle-full-complete": [(num_edges, num_ori, num_ori, 5)],
        "r2s1-fibre-bundle-full": [(num_edges, num_ori, num_ori, 3)],
        "r2s1-fibre-bundle-full-complete": [(num_edges, num_ori, num_ori, 4)],
        "se2-point-cloud": [(num_edges, 4)],
        "se3-point-cloud": [(num_edges, 9)],
        "se2-fibre-bundle": [(num_edges, num_ori, 2), (num_ori, num_ori, 2)],
        "se3-fibre-bundle": [(num_edges, num_ori, 3), (num_ori, num_ori, 6)],
    }[case]
    assert [tuple(t.shape) for t in out] == expected


def test_safe_norm_values() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=F64)
    # exact up to NORM_EPS, and exactly 0 at 0
    torch.testing.assert_close(safe_norm(x), torch.tensor([5.0, 0.0, 1e-3], dtype=F64), atol=1.01 * NORM_EPS, rtol=0)
    assert float(safe_norm(x)[1]) == 0.0
    assert safe_norm(x, keepdim=True).shape == (3, 1)
    assert safe_norm(x.T, dim=0).shape == (3,)


def test_relative_positions_point_from_receiver_to_sender() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=F64)
    edge_index = torch.tensor([[1, 0], [0, 1]])  # 1 → 0 and 0 → 1
    expected = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=F64)
    assert torch.equal(relative_positions(pos, edge_index), expected)
    torch.testing.assert_close(invariants_rn(pos, edge_index)[:, 0], torch.full((2,), math.sqrt(14.0), dtype=F64))


def test_r3s2_point_cloud_values_by_hand() -> None:
    # receiver 0 at the origin with o_i = z, sender 1 at r = (1, 0, 2) with o_j = (0.6, 0.8, 0):
    # a = o_i·r = 2, b = |r − a o_i| = 1, c = o_i·o_j = 0; e_perp = x, o_i × e_perp = y, d = 0.6, f = 0.8
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]], dtype=F64)
    ori = torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]], dtype=F64)
    edge_index = torch.tensor([[1], [0]])
    expected = torch.tensor([[2.0, 1.0, 0.0, 0.6, 0.8]], dtype=F64)
    atol = 2 * NORM_EPS  # b goes through safe_norm
    out = invariants_r3s2_point_cloud(pos, ori, edge_index, complete=True)
    torch.testing.assert_close(out, expected, atol=atol, rtol=0)
    torch.testing.assert_close(invariants_r3s2_point_cloud(pos, ori, edge_index), expected[:, :3], atol=atol, rtol=0)


def test_r2s1_point_cloud_values_by_hand() -> None:
    # o_i = x, r = (1, 2): a = 1, b = o_i × r = 2; o_j = (0.6, 0.8): c = 0.6, d = o_i × o_j = 0.8
    pos = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    ori = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=F64)
    expected = torch.tensor([[1.0, 2.0, 0.6, 0.8]], dtype=F64)
    torch.testing.assert_close(invariants_r2s1_point_cloud(pos, ori, torch.tensor([[1], [0]]), complete=True), expected)


def test_se_point_cloud_values_by_hand() -> None:
    # R_i = rotation by 90°, r = (1, 2): R_iᵀ r = (2, −1); R_iᵀ R_j = R_iᵀ, first column (0, −1)
    pos = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    quarter_turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)
    rot = torch.stack([quarter_turn, torch.eye(2, dtype=F64)])
    expected = torch.tensor([[2.0, -1.0, 0.0, -1.0]], dtype=F64)
    torch.testing.assert_close(invariants_se_point_cloud(pos, rot, torch.tensor([[1], [0]])), expected)


def test_se3_point_cloud_is_relative_pose() -> None:
    pos, rot = _random_poses(3, 2)
    out = invariants_se_point_cloud(pos, rot, torch.tensor([[1], [0]]))[0]  # [9]
    relative = rot[0].T @ rot[1]
    torch.testing.assert_close(out[:3], rot[0].T @ (pos[1] - pos[0]))
    torch.testing.assert_close(out[3:6], relative[:, 0])
    torch.testing.assert_close(out[6:9], relative[:, 1])


def _pair_invariants(point_cloud, pos_i, pos_j, ori_i, ori_j, complete: bool) -> torch.Tensor:
    """Point-cloud invariants of the single pair (receiver i, sender j)."""
    return point_cloud(torch.stack([pos_i, pos_j]), torch.stack([ori_i, ori_j]), torch.tensor([[1], [0]]), complete)[0]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("complete", [False, True])
def test_fibre_bundle_invariants_are_point_cloud_invariants_of_grid_pairs(dim: int, complete: bool) -> None:
    pos = torch.randn(5, dim, dtype=F64)
    grid = fibonacci_grid_s2(4) if dim == 3 else grid_s1(4)  # [O, n]
    if dim == 3:
        point_cloud, full_fn = invariants_r3s2_point_cloud, invariants_r3s2_fibre_bundle_full
        spatial, fibre = invariants_r3s2_fibre_bundle(pos, grid, EDGES)
    else:
        point_cloud, full_fn = invariants_r2s1_point_cloud, invariants_r2s1_fibre_bundle_full
        spatial, fibre = invariants_r2s1_fibre_bundle(pos, grid, EDGES, complete)
    full = full_fn(pos, grid, EDGES, complete)  # [E, O, O, K]
    for edge, (src, dst) in enumerate(EDGES.T.tolist()):
        for a in range(grid.shape[0]):  # receiver orientation
            for b in range(grid.shape[0]):  # sender orientation
                expected = _pair_invariants(point_cloud, pos[dst], pos[src], grid[a], grid[b], complete)  # [K]
                torch.testing.assert_close(full[edge, a, b], expected, atol=1e-12, rtol=0)
                torch.testing.assert_close(spatial[edge, a], expected[:2], atol=1e-12, rtol=0)
                fibre_expected = expected[2:] if dim == 2 else expected[2:3]  # c (and d in 2D)
                torch.testing.assert_close(fibre[a, b], fibre_expected, atol=1e-12, rtol=0)


def test_se_fibre_bundle_invariants_are_point_cloud_invariants_of_grid_pairs() -> None:
    pos = torch.randn(4, 3, dtype=F64)
    grid = grid_so3(4, steps=10)  # [O, 3, 3]
    spatial, fibre = invariants_se_fibre_bundle(pos, grid, EDGES[:, :3])
    for a in range(4):
        for b in range(4):
            rot = torch.stack([grid[a], grid[b], grid[b], grid[b]])  # receiver 0 carries R_a, senders R_b
            expected = invariants_se_point_cloud(pos, rot, torch.tensor([[1, 2], [0, 0]]))  # [2, 9]
            torch.testing.assert_close(spatial[:2, a], expected[:, :3], atol=1e-12, rtol=0)
            torch.testing.assert_close(fibre[a, b], expected[0, 3:], atol=1e-12, rtol=0)


@pytest.mark.parametrize("dim", [2, 3])
def test_complete_invariants_distinguish_mirrored_sender_orientations(dim: int) -> None:
    # Mirroring o_j in the plane of o_i and r keeps (a, b, c) but is not a rotation of the pair.
    pos = torch.zeros(2, dim, dtype=F64)
    pos[1, 0] = 1.0  # r along x
    if dim == 3:
        o_i = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
        o_j = _unit(torch.tensor([0.3, 0.5, 0.8], dtype=F64))
        mirrored = o_j * torch.tensor([1.0, -1.0, 1.0], dtype=F64)  # reflect y
        point_cloud = invariants_r3s2_point_cloud
    else:
        o_i = torch.tensor([0.6, 0.8], dtype=F64)
        o_j = _unit(torch.tensor([1.0, 0.3], dtype=F64))
        mirrored = 2.0 * (o_j @ o_i) * o_i - o_j  # reflect across the line of o_i: keeps c = o_i·o_j
        point_cloud = invariants_r2s1_point_cloud
    edge_index = torch.tensor([[1], [0]])
    first = point_cloud(pos, torch.stack([o_i, o_j]), edge_index, complete=True)[0]
    second = point_cloud(pos, torch.stack([o_i, mirrored]), edge_index, complete=True)[0]
    torch.testing.assert_close(first[:3], second[:3], atol=1e-12, rtol=0)
    assert float((first[3:] - second[3:]).abs().max()) > 0.1


def test_r2s1_fibre_bundle_complete_attribute_is_signed_sine() -> None:
    grid = grid_s1(4)  # 0°, 90°, 180°, 270°
    _, fibre = invariants_r2s1_fibre_bundle(torch.zeros(2, 2, dtype=F64), grid, torch.tensor([[1], [0]]), complete=True)
    torch.testing.assert_close(fibre[0, 1], torch.tensor([0.0, 1.0], dtype=F64), atol=1e-15, rtol=0)
    torch.testing.assert_close(fibre[0, 3], torch.tensor([0.0, -1.0], dtype=F64), atol=1e-15, rtol=0)


# Degenerate geometry: self-loops and coincident points (r = 0), and r parallel to o (b = 0).
DEGENERATE_POS = {
    2: torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=F64),
    3: torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64),
}
DEGENERATE_EDGES = torch.tensor([[0, 1, 2, 0], [0, 0, 0, 2]])  # self-loop, coincident, r ∥ o, r ∥ −o


def _degenerate_extra(dim: int, kind: str) -> torch.Tensor | None:
    axis = torch.zeros(dim, dtype=F64)
    axis[-1 if dim == 3 else 0] = 1.0  # along r of the edge 2 → 0
    if kind == "none":
        return None
    if kind == "ori":
        return axis.expand(3, dim).clone()
    if kind == "grid":
        return torch.stack([axis, -axis, _unit(torch.ones(dim, dtype=F64))])  # [3, n], includes ±r
    eye = torch.eye(dim, dtype=F64)
    if kind == "rot":
        return eye.expand(3, dim, dim).clone()
    return torch.stack([eye, -eye if dim == 2 else torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=F64))])


@pytest.mark.parametrize("case", CASES)
def test_invariants_have_finite_values_and_derivatives_at_degenerate_geometry(case: str) -> None:
    dim, kind, fn = CASES[case]
    pos = DEGENERATE_POS[dim].clone().requires_grad_(True)
    extra = _degenerate_extra(dim, kind)
    if extra is not None:
        extra = extra.clone().requires_grad_(True)
    out = _call(kind, fn, pos, extra, DEGENERATE_EDGES)
    assert all(torch.isfinite(t).all() for t in out)
    total = sum((t**2).sum() + t.sum() for t in out)
    inputs = [pos] if extra is None else [pos, extra]
    grads = torch.autograd.grad(total, inputs, create_graph=True, allow_unused=True)
    grads = [g for g in grads if g is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    second = torch.autograd.grad(sum(g.sum() for g in grads), inputs, allow_unused=True)
    assert all(torch.isfinite(g).all() for g in second if g is not None)


@pytest.mark.parametrize("dim", [2, 3])
def test_point_cloud_invariants_have_finite_hessian_when_r_is_zero_or_parallel(dim: int) -> None:
    point_cloud = invariants_r3s2_point_cloud if dim == 3 else invariants_r2s1_point_cloud
    ori = _degenerate_extra(dim, "ori")

    def energy(flat_pos: torch.Tensor) -> torch.Tensor:
        return point_cloud(flat_pos.view(3, dim), ori, DEGENERATE_EDGES, complete=True).sum()

    hessian = torch.autograd.functional.hessian(energy, DEGENERATE_POS[dim].flatten())
    assert hessian.shape == (3 * dim, 3 * dim)
    assert torch.isfinite(hessian).all()


def test_r3s2_complete_attributes_vanish_where_frame_is_undefined() -> None:
    pos, ori = DEGENERATE_POS[3], _degenerate_extra(3, "ori")
    out = invariants_r3s2_point_cloud(pos, ori, DEGENERATE_EDGES, complete=True)  # [4, 5]
    torch.testing.assert_close(out[:, 3:], torch.zeros(4, 2, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(out[:, 1], torch.zeros(4, dtype=F64), atol=1e-12, rtol=0)  # b = 0
    torch.testing.assert_close(out[:, 0], torch.tensor([0.0, 0.0, 1.0, -1.0], dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_r3s2_complete_invariants_are_invariant_when_r_is_parallel_to_receiver_orientation(dtype: torch.dtype) -> None:
    # the case of every lifted edge: o_i points at the sender, so the frame of d and f is undefined
    pos = torch.randn(2, 3, dtype=dtype)
    ori = torch.stack([_unit(pos[1] - pos[0]), _unit(torch.randn(3, dtype=dtype))])
    edge_index = torch.tensor([[1], [0]])
    rotation = random_rotation(3, dtype=dtype)
    before = invariants_r3s2_point_cloud(pos, ori, edge_index, complete=True)
    after = invariants_r3s2_point_cloud(pos @ rotation.T, ori @ rotation.T, edge_index, complete=True)
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(after, before, atol=atol, rtol=0)
    torch.testing.assert_close(before[0, 3:], torch.zeros(2, dtype=dtype), atol=atol, rtol=0)
