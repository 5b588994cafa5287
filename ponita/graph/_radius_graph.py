"""Radius graphs built with a cell list, so memory grows with the number of edges and not with N^2."""

import math

import torch
from torch import Tensor

from ponita.graph._checks import check_batch, check_pos, check_positive_int, check_radius
from ponita.graph._edge_order import receiver_order
from ponita.graph._ragged import ragged_arange, segment_starts

# Candidate (receiver, sender) pairs whose distance is computed at once. Each pair costs about
# 100 bytes of temporaries, so a chunk stays near 100 MB whatever the size of the point cloud.
_CANDIDATES_PER_CHUNK = 2**20

# Cell keys are int64; the key range (graphs x cells per graph) must stay below this bound.
_MAX_CELL_KEYS = 2**62


def radius_graph(
    pos: Tensor,
    radius: float,
    batch: Tensor | None = None,
    self_loops: bool = False,
    max_num_neighbors: int | None = None,
) -> Tensor:
    """Connects every pair of nodes of the same graph that are closer than ``radius``.

    The edge ``j -> i`` exists when :math:`\\lVert p_j - p_i \\rVert < r` (strict) and ``batch[j] ==
    batch[i]``. The distance is ``torch.linalg.vector_norm(pos[j] - pos[i])`` in the dtype of ``pos``.

    The search uses a cell list: each point goes into a cubic cell of side ``radius`` (the graph id is part
    of the cell key, so graphs never meet), points are sorted by cell, and each point is compared only
    with the points of the :math:`3^n` cells around its own (27 in 3D, 9 in 2D). Receivers are processed
    in chunks of about ``2**20`` candidate pairs, so peak memory is bounded by the output plus one chunk;
    no ``[N, N]`` matrix is ever formed. The graph carries no gradient: ``pos`` is only read.

    Args:
        pos: node positions, finite, in 2 or 3 dimensions.
        radius: cutoff distance ``r > 0``.
        batch: graph id of each node, sorted non-decreasing, or ``None`` for a single graph.
        self_loops: whether to include the edges ``i -> i``.
        max_num_neighbors: ``None`` (default) keeps every edge. An integer ``k`` keeps, for each receiver,
            only its ``k`` nearest senders (ties broken by the smaller sender index); the self-loop, when
            kept, is always the nearest and counts as one of the ``k``.

    Returns:
        ``edge_index`` (``edge_index[0]`` senders, ``edge_index[1]`` receivers), sorted by receiver and
        then by sender, on the device of ``pos``.

    Raises:
        ValueError: if ``pos`` is not a finite floating ``[N, 2]`` or ``[N, 3]`` tensor, ``radius`` is
            not a finite number > 0, ``batch`` is not a sorted integer ``[N]`` tensor on ``pos``'s
            device, ``max_num_neighbors`` is not ``None`` or an integer >= 1, or the point cloud spans
            too many cells of side ``radius`` to index with int64 keys.

    Shapes:
        pos ``[N, n]``, batch ``[N]`` → ``[2, E]``

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
        >>> radius_graph(pos, radius=1.5)
        tensor([[1, 0],
                [0, 1]])
        >>> radius_graph(pos, radius=2.5, batch=torch.tensor([0, 1, 1]))
        tensor([[2, 1],
                [1, 2]])
    """
    check_pos(pos)
    check_radius(radius)
    num_nodes, dim = pos.shape
    batch = check_batch(batch, num_nodes, pos.device)
    if max_num_neighbors is not None:
        check_positive_int(max_num_neighbors, "max_num_neighbors")
    return radius_graph_unchecked(pos, radius, batch, self_loops, max_num_neighbors)


def radius_graph_unchecked(
    pos: Tensor, radius: float, batch: Tensor | None, self_loops: bool, max_num_neighbors: int | None = None
) -> Tensor:
    """:func:`radius_graph` for arguments already checked by the caller (``batch`` int64 or ``None``)."""
    num_nodes, dim = pos.shape
    pos = pos.detach()
    if num_nodes == 0:
        return torch.empty(2, 0, dtype=torch.long, device=pos.device)  # [2, 0]
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)  # [N]

    cell_of_point, cell_counts, neighbour_cells = _cell_list(pos, radius, batch)
    points_by_cell = torch.argsort(cell_of_point, stable=True)  # [N]
    cell_starts = segment_starts(cell_counts)  # [U]
    neighbour_counts = torch.where(
        neighbour_cells >= 0, cell_counts[neighbour_cells.clamp(min=0)], 0
    )  # [U, 3^n]
    candidates = neighbour_counts.sum(1)[cell_of_point]  # [N]
    chunk_of_receiver = segment_starts(candidates) // _CANDIDATES_PER_CHUNK  # [N]
    receivers_per_chunk = torch.unique_consecutive(chunk_of_receiver, return_counts=True)[1].tolist()

    num_offsets = 3**dim
    edges = []
    first = 0
    for num_receivers in receivers_per_chunk:
        receivers = torch.arange(first, first + num_receivers, device=pos.device)  # [R]
        first += num_receivers
        cells = neighbour_cells[cell_of_point[receivers]].flatten()  # [R * 3^n]
        counts = neighbour_counts[cell_of_point[receivers]].flatten()  # [R * 3^n]
        pair, local = ragged_arange(counts)  # [T], [T]
        src = points_by_cell[cell_starts[cells[pair]] + local]  # [T]
        dst = receivers[pair // num_offsets]  # [T]
        dist = torch.linalg.vector_norm(pos[src] - pos[dst], dim=-1)  # [T]
        keep = dist < radius  # [T]
        if not self_loops:
            keep &= src != dst
        src, dst, dist = src[keep], dst[keep], dist[keep]
        perm = receiver_order(src, dst, num_nodes)  # [E_chunk]
        src, dst, dist = src[perm], dst[perm], dist[perm]
        if max_num_neighbors is not None:
            nearest = _nearest_per_receiver(dst, dist, max_num_neighbors)  # [E_chunk']
            src, dst = src[nearest], dst[nearest]
        edges.append(torch.stack([src, dst]))  # [2, E_chunk]
    return torch.cat(edges, dim=1)  # [2, E]


def _cell_list(pos: Tensor, radius: float, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Puts each point in a cubic cell of side ``radius`` and finds the occupied neighbours of each cell.

    Cell coordinates are counted from the lowest corner of each graph, in float64 so that two points
    closer than ``radius`` always land in adjacent cells. The cell key is
    ``((batch * D_0 + c_0) * D_1 + c_1) * D_2 + c_2`` with ``D_d`` the number of cells along axis ``d``;
    a neighbour outside ``[0, D_d)`` on some axis is dropped, so keys never wrap into another graph.

    Args:
        pos: node positions.
        radius: cell side.
        batch: graph id of each node, sorted.

    Returns:
        ``(cell_of_point, cell_counts, neighbour_cells)``: the occupied cell of each point (cells are
        numbered by sorted key), the number of points in each occupied cell, and for each occupied cell
        and each of the :math:`3^n` offsets in ``{-1, 0, 1}^n`` the occupied neighbour cell, or ``-1``.

    Raises:
        ValueError: if a graph spans so many cells that the keys would overflow int64.

    Shapes:
        pos ``[N, n]``, batch ``[N]`` → ``([N], [U], [U, 3^n])``
    """
    num_nodes, dim = pos.shape
    num_graphs = int(batch[-1]) + 1
    pos64 = pos.double()  # [N, n]
    graph_min = pos64.new_full((num_graphs, dim), math.inf).scatter_reduce(
        0, batch[:, None].expand(-1, dim), pos64, reduce="amin"
    )  # [G, n]
    scaled = torch.floor((pos64 - graph_min[batch]) / radius)  # [N, n]
    cells_per_axis = [e + 1 for e in scaled.max(0).values.tolist()]  # floats, inf when r is tiny
    if not num_graphs * math.prod(cells_per_axis) < _MAX_CELL_KEYS:
        raise ValueError(
            f"radius_graph: with radius={radius} a graph spans up to {cells_per_axis} cells per axis, "
            f"which over {num_graphs} graphs is too many for int64 cell keys. Use a larger radius or "
            "check pos for far-away outliers."
        )
    extents = [int(e) for e in cells_per_axis]
    coords = scaled.long()  # [N, n]
    strides = [math.prod(extents[d + 1 :]) for d in range(dim)]
    strides_t = torch.tensor(strides, device=pos.device)  # [n]
    point_key = batch * math.prod(extents) + (coords * strides_t).sum(-1)  # [N]
    cell_keys, cell_of_point, cell_counts = torch.unique(
        point_key, sorted=True, return_inverse=True, return_counts=True
    )  # [U], [N], [U]
    num_cells = cell_keys.numel()
    representative = torch.zeros(num_cells, dtype=torch.long, device=pos.device).scatter_(
        0, cell_of_point, torch.arange(num_nodes, device=pos.device)
    )  # [U]
    cell_coords = coords[representative]  # [U, n]
    extents_t = torch.tensor(extents, device=pos.device)  # [n]

    offsets = torch.cartesian_prod(*[torch.tensor([-1, 0, 1], device=pos.device)] * dim)  # [3^n, n]
    neighbour_cells = torch.full(
        (num_cells, offsets.shape[0]), -1, dtype=torch.long, device=pos.device
    )  # [U, 3^n]
    for o, offset in enumerate(offsets):
        moved = cell_coords + offset  # [U, n]
        inside = ((moved >= 0) & (moved < extents_t)).all(-1)  # [U]
        key = cell_keys + (offset * strides_t).sum()  # [U]
        found = torch.searchsorted(cell_keys, key).clamp(max=num_cells - 1)  # [U]
        neighbour_cells[:, o] = torch.where(inside & (cell_keys[found] == key), found, -1)
    return cell_of_point, cell_counts, neighbour_cells


def _nearest_per_receiver(dst: Tensor, dist: Tensor, k: int) -> Tensor:
    """Selects the ``k`` shortest edges of each receiver.

    Args:
        dst: receiver of each edge, sorted (edges sorted by receiver, then sender).
        dist: length of each edge.
        k: edges kept per receiver.

    Returns:
        The indices of the kept edges, increasing, so the receiver-then-sender order is preserved. Among
        edges of equal length the earlier one (smaller sender) wins.

    Shapes:
        dst ``[E]``, dist ``[E]`` → ``[E']``
    """
    by_length = torch.argsort(dist, stable=True)  # [E]
    by_length = by_length[torch.argsort(dst[by_length], stable=True)]  # [E], sorted by (dst, dist, src)
    counts = torch.unique_consecutive(dst[by_length], return_counts=True)[1]  # [receivers with edges]
    rank = ragged_arange(counts)[1]  # [E]
    return torch.sort(by_length[rank < k]).values  # [E']
