r"""Bi-invariant attributes of point pairs on R^n, R^n×S^(n−1) and SE(n).

A pair is a receiver :math:`i` and a sender :math:`j` (``edge_index[1]`` and ``edge_index[0]``) with
relative position :math:`r = p_j - p_i`. An attribute is bi-invariant when it is unchanged if the
same rotation and translation act on both points; kernels that depend on the pair only through
these attributes make a convolution equivariant (Bekkers et al., ICLR 2024, Thm. 1).

All functions are batched over edges, vectorised, and differentiable twice. Norms go through
:func:`safe_norm`, so coincident points, self-loops and :math:`r \parallel o` give finite values,
gradients and second derivatives.
"""

import torch
from torch import Tensor

NORM_EPS = 1e-9
r"""Smoothing of :func:`safe_norm` in the units of the input (Å for molecules): values are exact up
to :math:`\epsilon`, and second derivatives are bounded by :math:`1/\epsilon`."""


def safe_norm(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    r"""Euclidean norm that is smooth at zero, :math:`\sqrt{\|x\|^2 + \epsilon^2} - \epsilon`.

    Equals :math:`\|x\|` up to :math:`\epsilon` = :data:`NORM_EPS`; its gradient is 0 and its
    Hessian :math:`I/\epsilon` at :math:`x = 0`, so no NaN appears in any derivative.

    Args:
        x: vectors.
        dim: dimension that holds the vector components.
        keepdim: keep ``dim`` with size 1.

    Returns:
        Norms.

    Shapes:
        ``[..., n, ...]`` → ``[..., ...]``

    Example:
        >>> safe_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64))
        tensor([5.0000, 0.0000], dtype=torch.float64)
    """
    squared = x.pow(2).sum(dim=dim, keepdim=keepdim)
    return torch.sqrt(squared + NORM_EPS**2) - NORM_EPS


def relative_positions(pos: Tensor, edge_index: Tensor) -> Tensor:
    r"""Relative position of the sender seen from the receiver, :math:`r = p_j - p_i`.

    Shapes:
        pos ``[N, n]``, edge_index ``[2, E]`` → ``[E, n]``

    Example:
        >>> relative_positions(torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.tensor([[1], [0]]))
        tensor([[1., 2.]])
    """
    return pos[edge_index[0]] - pos[edge_index[1]]  # [E, n]


def invariants_rn(pos: Tensor, edge_index: Tensor) -> Tensor:
    r"""Bi-invariant of a pair of points in :math:`\mathbb{R}^n`: the distance :math:`\|r\|`.

    Args:
        pos: positions :math:`p`.
        edge_index: senders ``[0]`` and receivers ``[1]``.

    Returns:
        Distances.

    Shapes:
        pos ``[N, n]``, edge_index ``[2, E]`` → ``[E, 1]``

    Example:
        >>> invariants_rn(torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.0, 4.0]]), torch.tensor([[1], [0]]))
        tensor([[5.]])
    """
    return safe_norm(relative_positions(pos, edge_index), keepdim=True)  # [E, 1]


def invariants_r3s2_point_cloud(
    pos: Tensor, ori: Tensor, edge_index: Tensor, complete: bool = False
) -> Tensor:
    r"""Bi-invariants of oriented points :math:`(p, o) \in \mathbb{R}^3 \times S^2`.

    .. math::
        a = o_i \cdot r, \qquad b = \| r - a\, o_i \|, \qquad c = o_i \cdot o_j

    With ``complete=True`` two more attributes give :math:`o_j` in the receiver frame
    :math:`(o_i, e_\perp, o_i \times e_\perp)`, :math:`e_\perp = (r - a o_i) / b`, scaled by :math:`b`:

    .. math::
        d = b\, o_j \cdot e_\perp = o_j \cdot (r - a\, o_i), \qquad
        f = b\, o_j \cdot (o_i \times e_\perp) = o_j \cdot (o_i \times r)

    The three attributes of PONITA do not determine the pair up to SE(3) (the sign and angle of
    :math:`o_j` around :math:`o_i` are lost); the five do wherever :math:`b > 0`
    (Bellaard, Smets, Duits 2025). Where :math:`b = 0` the frame is undefined and :math:`d = f = 0`.
    The scaling by :math:`b` makes :math:`d, f` polynomials: without it, rounding errors in
    :math:`r - a o_i` for :math:`r \parallel o_i` (every lifted edge meets this case) would be
    amplified into arbitrary, non-equivariant directions :math:`e_\perp`.

    Args:
        pos: positions :math:`p`.
        ori: unit orientations :math:`o`.
        edge_index: senders ``[0]`` and receivers ``[1]``.
        complete: add :math:`d, f`.

    Returns:
        :math:`(a, b, c)` or :math:`(a, b, c, d, f)`.

    Shapes:
        pos ``[N, 3]``, ori ``[N, 3]``, edge_index ``[2, E]`` → ``[E, 3]`` or ``[E, 5]``

    Example:
        >>> pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
        >>> ori = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        >>> invariants_r3s2_point_cloud(pos, ori, torch.tensor([[1], [0]]))
        tensor([[2., 1., 0.]])
    """
    rel = relative_positions(pos, edge_index)  # [E, 3]
    return _r3s2(rel, ori[edge_index[1]], ori[edge_index[0]], complete)  # [E, K]


def invariants_r2s1_point_cloud(
    pos: Tensor, ori: Tensor, edge_index: Tensor, complete: bool = False
) -> Tensor:
    r"""Bi-invariants of oriented points :math:`(p, o) \in \mathbb{R}^2 \times S^1`.

    .. math::
        a = o_i \cdot r, \qquad b = o_i \times r = o_{i,x} r_y - o_{i,y} r_x, \qquad c = o_i \cdot o_j

    and with ``complete=True`` also :math:`d = o_i \times o_j`, the sine of the angle from
    :math:`o_i` to :math:`o_j`, which :math:`c` alone leaves ambiguous.

    Args:
        pos: positions.
        ori: unit orientations.
        edge_index: senders ``[0]`` and receivers ``[1]``.
        complete: add :math:`d`.

    Returns:
        :math:`(a, b, c)` or :math:`(a, b, c, d)`.

    Shapes:
        pos ``[N, 2]``, ori ``[N, 2]``, edge_index ``[2, E]`` → ``[E, 3]`` or ``[E, 4]``

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
        >>> ori = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> invariants_r2s1_point_cloud(pos, ori, torch.tensor([[1], [0]]), complete=True)
        tensor([[1., 2., 0., 1.]])
    """
    rel = relative_positions(pos, edge_index)  # [E, 2]
    return _r2s1(rel, ori[edge_index[1]], ori[edge_index[0]], complete)  # [E, K]


def invariants_r3s2_fibre_bundle(pos: Tensor, grid: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    r"""Separable bi-invariants on the fibre bundle :math:`\mathbb{R}^3 \times S^2` over a grid.

    Every point carries the same grid of orientations :math:`o_1, \dots, o_O`. The invariants of
    :math:`(p_i, o_a)` and :math:`(p_j, o_b)` split into a spatial part, which depends on the edge
    and the receiver orientation, and a fibre part, which depends on the two orientations only:

    .. math::
        a_{e,a} = o_a \cdot r_e, \qquad b_{e,a} = \| r_e - a_{e,a} o_a \|, \qquad c_{a,b} = o_a \cdot o_b

    Args:
        pos: positions.
        grid: orientation grid.
        edge_index: senders ``[0]`` and receivers ``[1]``.

    Returns:
        ``(spatial, fibre)``: spatial :math:`(a, b)` and fibre :math:`c` attributes.

    Shapes:
        pos ``[N, 3]``, grid ``[O, 3]``, edge_index ``[2, E]`` → ``([E, O, 2], [O, O, 1])``

    Example:
        >>> grid = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        >>> spatial, fibre = invariants_r3s2_fibre_bundle(
        ...     torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]), grid, torch.tensor([[1], [0]]))
        >>> spatial
        tensor([[[2., 0.],
                 [0., 2.]]])
    """
    rel = relative_positions(pos, edge_index)  # [E, 3]
    spatial = _r3s2(rel[:, None, :], grid[None, :, :], None, complete=False)  # [E, O, 2]
    fibre = (grid @ grid.T).unsqueeze(-1)  # [O, O, 1]
    return spatial, fibre


def invariants_r2s1_fibre_bundle(
    pos: Tensor, grid: Tensor, edge_index: Tensor, complete: bool = False
) -> tuple[Tensor, Tensor]:
    r"""Separable bi-invariants on the fibre bundle :math:`\mathbb{R}^2 \times S^1` over a grid.

    .. math::
        a_{e,a} = o_a \cdot r_e, \qquad b_{e,a} = o_a \times r_e, \qquad c_{a,b} = o_a \cdot o_b
        \;\; (\text{and } d_{a,b} = o_a \times o_b \text{ if complete})

    Args:
        pos: positions.
        grid: orientation grid.
        edge_index: senders ``[0]`` and receivers ``[1]``.
        complete: add the fibre attribute :math:`d`.

    Returns:
        ``(spatial, fibre)``.

    Shapes:
        pos ``[N, 2]``, grid ``[O, 2]``, edge_index ``[2, E]`` → ``([E, O, 2], [O, O, 1 or 2])``

    Example:
        >>> spatial, fibre = invariants_r2s1_fibre_bundle(
        ...     torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.eye(2), torch.tensor([[1], [0]]))
        >>> spatial
        tensor([[[ 1.,  2.],
                 [ 2., -1.]]])
    """
    rel = relative_positions(pos, edge_index)  # [E, 2]
    spatial = _r2s1(rel[:, None, :], grid[None, :, :], None, complete=False)  # [E, O, 2]
    fibre = [grid @ grid.T]  # [O, O]
    if complete:
        fibre.append(_cross_2d(grid[:, None, :], grid[None, :, :]))  # [O, O]
    return spatial, torch.stack(fibre, dim=-1)  # [O, O, 1 or 2]


def invariants_r3s2_fibre_bundle_full(
    pos: Tensor, grid: Tensor, edge_index: Tensor, complete: bool = False
) -> Tensor:
    r"""Non-separable bi-invariants on :math:`\mathbb{R}^3 \times S^2` for every pair of grid points.

    The attributes of :func:`invariants_r3s2_point_cloud` for the receiver :math:`(p_i, o_a)` and
    the sender :math:`(p_j, o_b)`, for all :math:`a, b`. Needs :math:`O^2` times the memory of the
    point-cloud attributes.

    Shapes:
        pos ``[N, 3]``, grid ``[O, 3]``, edge_index ``[2, E]`` → ``[E, O, O, 3 or 5]``

    Example:
        >>> invariants_r3s2_fibre_bundle_full(
        ...     torch.zeros(2, 3), torch.eye(3), torch.tensor([[1], [0]]), complete=True).shape
        torch.Size([1, 3, 3, 5])
    """
    rel = relative_positions(pos, edge_index)  # [E, 3]
    return _r3s2(rel[:, None, None, :], grid[None, :, None, :], grid[None, None, :, :], complete)


def invariants_r2s1_fibre_bundle_full(
    pos: Tensor, grid: Tensor, edge_index: Tensor, complete: bool = False
) -> Tensor:
    r"""Non-separable bi-invariants on :math:`\mathbb{R}^2 \times S^1` for every pair of grid points.

    The attributes of :func:`invariants_r2s1_point_cloud` for all receiver and sender orientations.

    Shapes:
        pos ``[N, 2]``, grid ``[O, 2]``, edge_index ``[2, E]`` → ``[E, O, O, 3 or 4]``

    Example:
        >>> invariants_r2s1_fibre_bundle_full(torch.zeros(2, 2), torch.eye(2), torch.tensor([[1], [0]])).shape
        torch.Size([1, 2, 2, 3])
    """
    rel = relative_positions(pos, edge_index)  # [E, 2]
    return _r2s1(rel[:, None, None, :], grid[None, :, None, :], grid[None, None, :, :], complete)


def invariants_se_point_cloud(pos: Tensor, rot: Tensor, edge_index: Tensor) -> Tensor:
    r"""Bi-invariants of poses :math:`(p, R) \in SE(n)`: the sender in the receiver's frame.

    .. math::
        g_i^{-1} g_j = (R_i^\top r,\; R_i^\top R_j)

    The relative rotation is represented smoothly by its first column in 2D (cosine and sine of the
    angle) and its first two columns in 3D (the continuous 6D representation, Zhou et al. 2019).
    The attributes determine the pair up to SE(n), so they are complete.

    Args:
        pos: positions.
        rot: rotation matrices (columns are the local axes).
        edge_index: senders ``[0]`` and receivers ``[1]``.

    Returns:
        Relative position (``n``) then relative rotation (2 in 2D, 6 in 3D).

    Shapes:
        pos ``[N, n]``, rot ``[N, n, n]``, edge_index ``[2, E]`` → ``[E, 4]`` (2D) or ``[E, 9]`` (3D)

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
        >>> invariants_se_point_cloud(pos, torch.eye(2).expand(2, 2, 2), torch.tensor([[1], [0]]))
        tensor([[1., 2., 1., 0.]])
    """
    rel = relative_positions(pos, edge_index)  # [E, n]
    return _se(rel, rot[edge_index[1]], rot[edge_index[0]])  # [E, K]


def invariants_se_fibre_bundle(pos: Tensor, grid: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    r"""Separable bi-invariants on the SE(n) fibre bundle over a grid of rotations :math:`R_a`.

    .. math::
        s_{e,a} = R_a^\top r_e, \qquad f_{a,b} = \mathrm{rep}(R_a^\top R_b)

    with the smooth rotation representation of :func:`invariants_se_point_cloud`.

    Shapes:
        pos ``[N, n]``, grid ``[O, n, n]``, edge_index ``[2, E]`` →
        ``([E, O, n], [O, O, 2])`` (2D) or ``([E, O, 3], [O, O, 6])`` (3D)

    Example:
        >>> spatial, fibre = invariants_se_fibre_bundle(
        ...     torch.zeros(2, 3), torch.eye(3).expand(4, 3, 3), torch.tensor([[1], [0]]))
        >>> spatial.shape, fibre.shape
        (torch.Size([1, 4, 3]), torch.Size([4, 4, 6]))
    """
    rel = relative_positions(pos, edge_index)  # [E, n]
    spatial = torch.einsum("oki,ek->eoi", grid, rel)  # [E, O, n]: R_aᵀ r
    relative_rotation = torch.einsum("aki,bkj->abij", grid, grid)  # [O, O, n, n]: R_aᵀ R_b
    return spatial, _rotation_representation(relative_rotation)  # [O, O, 2 or 6]


def _r3s2(rel: Tensor, ori_i: Tensor, ori_j: Tensor | None, complete: bool) -> Tensor:
    """(a, b[, c[, d, f]]) for broadcastable rel, receiver and (optional) sender orientations."""
    shape = _broadcast_batch_shape(rel, ori_i, ori_j)
    a = (rel * ori_i).sum(-1)  # [...]
    perpendicular = rel - a.unsqueeze(-1) * ori_i  # [..., 3]
    b = safe_norm(perpendicular)  # [...]
    attributes = [a, b]
    if ori_j is not None:
        attributes.append((ori_i * ori_j).sum(-1))  # c
        if complete:
            o_i_cross_r = torch.linalg.cross(*torch.broadcast_tensors(ori_i, rel), dim=-1)  # [..., 3]
            attributes.append((ori_j * perpendicular).sum(-1))  # d = b o_j·e_perp
            attributes.append((ori_j * o_i_cross_r).sum(-1))  # f = b o_j·(o_i × e_perp)
    return torch.stack([t.expand(shape) for t in attributes], dim=-1)  # [..., K]


def _r2s1(rel: Tensor, ori_i: Tensor, ori_j: Tensor | None, complete: bool) -> Tensor:
    """(a, b[, c[, d]]) in 2D, with signed b."""
    shape = _broadcast_batch_shape(rel, ori_i, ori_j)
    attributes = [(rel * ori_i).sum(-1), _cross_2d(ori_i, rel)]  # a, b
    if ori_j is not None:
        attributes.append((ori_i * ori_j).sum(-1))  # c
        if complete:
            attributes.append(_cross_2d(ori_i, ori_j))  # d
    return torch.stack([t.expand(shape) for t in attributes], dim=-1)  # [..., K]


def _broadcast_batch_shape(*vectors: Tensor | None) -> torch.Size:
    """Broadcast shape of the leading (non-component) dimensions."""
    return torch.broadcast_shapes(*(v.shape[:-1] for v in vectors if v is not None))


def _se(rel: Tensor, rot_i: Tensor, rot_j: Tensor) -> Tensor:
    local = torch.einsum("eki,ek->ei", rot_i, rel)  # [E, n]: R_iᵀ r
    relative_rotation = rot_i.transpose(-1, -2) @ rot_j  # [E, n, n]
    return torch.cat([local, _rotation_representation(relative_rotation)], dim=-1)  # [E, K]


def _rotation_representation(rotation: Tensor) -> Tensor:
    """First column (2D) or first two columns (3D) of rotation matrices, flattened."""
    num_columns = 1 if rotation.shape[-1] == 2 else 2
    return rotation[..., :num_columns].transpose(-1, -2).flatten(-2)  # [..., 2 or 6]


def _cross_2d(u: Tensor, v: Tensor) -> Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
