"""Edge lifting: from a point cloud in R^n to a point cloud in R^n x S^(n-1), one point per edge."""

from typing import NamedTuple

import torch
from torch import Tensor

from ponita.graph._checks import check_edge_index, check_pos
from ponita.ops import require
from ponita.graph._ragged import ragged_arange, segment_starts


class LiftedPointCloud(NamedTuple):
    """A point cloud of positions with orientations, lifted from the edges of an atom graph.

    Lifted points are sorted by ``node_index``; the points of one atom keep the order of their edges in
    the input ``edge_index``.

    Attributes:
        pos: position of each lifted point: the position of its atom, ``[M, n]``.
        ori: unit orientation of each lifted point, ``[M, n]``.
        node_index: the atom each lifted point belongs to (non-decreasing), ``[M]``. Per-atom data
            ``x`` (``[N, ...]``) becomes per-point data with ``x[node_index]``; ``batch[node_index]`` is
            the batch vector of the lifted points.
        edge_index: edges between lifted points (``edge_index[0]`` senders, ``edge_index[1]`` receivers),
            sorted by receiver and then by sender, ``[2, E']``.
    """

    pos: Tensor
    ori: Tensor
    node_index: Tensor
    edge_index: Tensor


def lift_edges_to_oriented_points(pos: Tensor, edge_index: Tensor, connect_index: Tensor | None = None) -> LiftedPointCloud:
    """Lifts each edge of an atom graph to an oriented point at its receiver (PONITA's ``num_ori=-1`` mode).

    Each directed non-loop edge ``j -> i`` becomes one lifted point at atom ``i``, with position
    :math:`p_i` and orientation

    .. math::
        o = \\frac{p_j - p_i}{\\lVert p_j - p_i \\rVert},

    the unit vector from the receiver towards the sender. Two lifted points are connected when their atoms
    are: for every edge ``j -> i`` of ``connect_index`` (default: ``edge_index``), and for every atom's
    self-loop ``i -> i`` (added whether or not the graph holds it), every lifted point of ``j`` sends to
    every lifted point of ``i``. Such an edge therefore yields :math:`M_i M_j` lifted edges, with
    :math:`M_i` the number of lifted points of atom ``i`` (its in-degree in ``edge_index`` without
    self-loops). Lifting the bonds of a molecule and connecting along its fully connected graph gives
    PONITA's QM9 setup: oriented points from bonds, all connected.

    Self-loops in ``edge_index`` are dropped before lifting (a zero vector has no direction). An atom with
    no incoming non-loop edge gets no lifted point, so it drops out of the lifted point cloud: check
    ``node_index`` (e.g. ``torch.bincount(node_index, minlength=N)``) if every atom must be represented.
    The lifting is differentiable with respect to ``pos``, and equivariant: rotating and translating
    ``pos`` rotates ``ori``, moves ``pos`` along and leaves ``node_index`` and ``edge_index`` unchanged.

    Args:
        pos: atom positions, finite, in 2 or 3 dimensions.
        edge_index: base edges (``edge_index[0]`` senders, ``edge_index[1]`` receivers), without duplicates,
            in any order; each non-loop edge becomes a lifted point.
        connect_index: the atom graph along which lifted points are connected (without duplicates; its
            self-loops are ignored, every atom's are added); ``None``: ``edge_index``.

    Returns:
        The lifted point cloud; see :class:`LiftedPointCloud`.

    Raises:
        ValueError: if ``pos`` is not a finite floating ``[N, 2]`` or ``[N, 3]`` tensor, ``edge_index`` is
            not an integer ``[2, E]`` tensor of indices below ``N``, holds an edge twice, or joins two atoms
            at the same position (the orientation of that edge is undefined).

    Shapes:
        pos ``[N, n]``, edge_index ``[2, E]`` → pos ``[M, n]``, ori ``[M, n]``, node_index ``[M]``,
        edge_index ``[2, E']`` with ``M`` the number of non-loop base edges and
        :math:`E' = \\sum_{j \\to i} M_i M_j` over the non-loop base edges and the self-loops.

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
        >>> edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])
        >>> lifted = lift_edges_to_oriented_points(pos, edge_index)
        >>> lifted.node_index
        tensor([0, 0, 1])
        >>> lifted.ori
        tensor([[ 1.,  0.],
                [ 0.,  1.],
                [-1.,  0.]])
        >>> lifted.edge_index
        tensor([[0, 1, 2, 0, 1, 2, 0, 1, 2],
                [0, 0, 0, 1, 1, 1, 2, 2, 2]])
    """
    check_pos(pos)
    check_edge_index(edge_index, pos.shape[0], pos.device)
    if connect_index is not None:
        check_edge_index(connect_index, pos.shape[0], pos.device)
    check_liftable(pos, edge_index)
    return lift_edges_unchecked(pos, edge_index, connect_index)


def check_liftable(pos: Tensor, edge_index: Tensor) -> None:
    """Checks what lifting needs beyond a valid graph: no edge twice, no edge of zero length.

    Raises:
        ValueError: (on the CPU; a device-side assertion on CUDA) naming the first offending edge.
    """
    num_nodes = pos.shape[0]
    edge_index = edge_index.long()  # [2, E]
    src, dst = edge_index[0], edge_index[1]  # [E], [E]
    non_loop = src != dst  # [E]
    # Self-loops get a key of their own below every real key, so they never look like duplicates.
    key = torch.where(non_loop, dst * num_nodes + src, -1 - torch.arange(src.shape[0], device=src.device))  # [E]
    sorted_key = torch.sort(key).values  # [E]

    def duplicate_detail() -> str:
        repeated = sorted_key[1:][sorted_key[1:] == sorted_key[:-1]]
        first = int(repeated[0])
        return (
            f"edge_index holds the edge {first % num_nodes} -> {first // num_nodes} more than once; each "
            "directed edge must appear once. Remove duplicates with torch_geometric.utils.coalesce."
        )

    require(
        (sorted_key[1:] != sorted_key[:-1]).all(),
        "edge_index holds a directed edge more than once; remove duplicates with torch_geometric.utils.coalesce.",
        duplicate_detail,
    )
    length = torch.linalg.vector_norm(pos[src] - pos[dst], dim=-1).detach()  # [E]
    coincident = non_loop & (length == 0)  # [E]

    def coincident_detail() -> str:
        e = int(coincident.nonzero()[0])
        j, i = int(src[e]), int(dst[e])
        return (
            f"edge {e} ({j} -> {i}) joins two atoms at the same position {pos[i].tolist()}, so it has no "
            "orientation. Remove coincident atoms or drop that edge before lifting."
        )

    require(
        ~coincident.any(),
        "edge_index joins two atoms at the same position, so that edge has no orientation; remove coincident "
        "atoms or drop that edge before lifting.",
        coincident_detail,
    )


def lift_edges_unchecked(pos: Tensor, edge_index: Tensor, connect_index: Tensor | None = None) -> LiftedPointCloud:
    """:func:`lift_edges_to_oriented_points` for arguments already checked (:func:`check_liftable`)."""
    num_nodes = pos.shape[0]
    edge_index = edge_index.long()  # [2, E]
    non_loop = (edge_index[0] != edge_index[1]).nonzero().flatten()  # [M], positions in the input
    src, dst = edge_index[0, non_loop], edge_index[1, non_loop]  # [M], [M]

    # One lifted point per non-loop edge, grouped by receiver atom (input order within an atom).
    point_edge = non_loop[torch.argsort(dst, stable=True)]  # [M], input position of each point's edge
    node_index = edge_index[1, point_edge]  # [M]
    direction = pos[edge_index[0, point_edge]] - pos[node_index]  # [M, n]
    length = torch.linalg.vector_norm(direction, dim=-1, keepdim=True)  # [M, 1]
    ori = direction / length  # [M, n]
    lifted_pos = pos[node_index]  # [M, n]

    points_per_atom = node_index.new_zeros(num_nodes).index_add_(
        0, node_index, torch.ones_like(node_index)
    )  # [N], static size (bincount's depends on the values)
    first_point = segment_starts(points_per_atom)  # [N]

    # Base edges of the lifted graph: the non-loop edges of the connecting graph plus a self-loop at every
    # atom that has points, sorted by (receiver, sender).
    if connect_index is not None:
        connect_index = connect_index.long()  # [2, C]
        connect_non_loop = connect_index[:, connect_index[0] != connect_index[1]]  # [2, C']
        src, dst = connect_non_loop[0], connect_non_loop[1]  # [C'], [C']
    loops = (points_per_atom > 0).nonzero().flatten()  # [L]
    base_src = torch.cat([src, loops])  # [B]
    base_dst = torch.cat([dst, loops])  # [B]
    order = torch.argsort(base_dst * num_nodes + base_src)  # [B]
    base_src, base_dst = base_src[order], base_dst[order]

    # For each atom i, the senders of any of its points: the points of its in-neighbours j (including i),
    # listed neighbour by neighbour. Since neighbours are sorted and each atom's points are contiguous,
    # the list is increasing.
    edge_of_sender, sender_rank = ragged_arange(points_per_atom[base_src])  # [S], [S]
    senders = first_point[base_src[edge_of_sender]] + sender_rank  # [S]
    senders_per_atom = torch.zeros_like(points_per_atom).index_add_(
        0, base_dst, points_per_atom[base_src]
    )  # [N]
    first_sender = segment_starts(senders_per_atom)  # [N]

    # Every lifted point receives from its atom's whole sender list.
    lifted_dst, rank = ragged_arange(senders_per_atom[node_index])  # [E'], [E']
    lifted_src = senders[first_sender[node_index[lifted_dst]] + rank]  # [E']
    return LiftedPointCloud(
        pos=lifted_pos,
        ori=ori,
        node_index=node_index,
        edge_index=torch.stack([lifted_src, lifted_dst]),  # [2, E']
    )
