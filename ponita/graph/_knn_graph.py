"""k-nearest-neighbour graphs, computed in chunks of receivers so memory stays bounded."""

import torch
from torch import Tensor

from ponita.graph._checks import check_batch, check_pos, check_positive_int
from ponita.graph._edge_order import receiver_order
from ponita.graph._ragged import segment_starts

# (receiver, candidate sender) distances computed at once. Each costs about 50 bytes of temporaries
# in 3D, so a chunk stays near 50 MB whatever the size of the graphs.
_CANDIDATES_PER_CHUNK = 2**20


def knn_graph(pos: Tensor, k: int, batch: Tensor | None = None, self_loops: bool = False) -> Tensor:
    """Connects every node to its ``k`` nearest nodes of the same graph.

    Each receiver ``i`` gets the ``k`` senders ``j`` with ``batch[j] == batch[i]`` that minimise
    ``torch.linalg.vector_norm(pos[j] - pos[i])``, or every node of its graph when the graph has fewer
    (not counting ``i`` itself unless ``self_loops``). Among senders at equal distance the smaller index
    wins, so the result is deterministic. With ``self_loops=True`` the self-loop is the nearest sender and
    counts as one of the ``k``.

    The search is exact and brute force: receivers are processed in chunks, each compared with every node
    of its own graph (padded to the largest graph), about ``2**20`` distances at a time. Memory is bounded;
    time is :math:`O(\\sum_g N_g^2)`, so for large graphs prefer :func:`radius_graph`. The graph carries
    no gradient: ``pos`` is only read.

    Args:
        pos: node positions, finite, in 2 or 3 dimensions.
        k: number of neighbours per receiver, >= 1.
        batch: graph id of each node, sorted non-decreasing, or ``None`` for a single graph.
        self_loops: whether the edge ``i -> i`` may be chosen (it always is, being at distance 0).

    Returns:
        ``edge_index`` (``edge_index[0]`` senders, ``edge_index[1]`` receivers), sorted by receiver and
        then by sender, on the device of ``pos``.

    Raises:
        ValueError: if ``pos`` is not a finite floating ``[N, 2]`` or ``[N, 3]`` tensor, ``k`` is not an
            integer >= 1, or ``batch`` is not a sorted integer ``[N]`` tensor on ``pos``'s device.

    Shapes:
        pos ``[N, n]``, batch ``[N]`` → ``[2, E]`` with ``E <= k N``.

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
        >>> knn_graph(pos, k=1)
        tensor([[1, 0, 1],
                [0, 1, 2]])
    """
    check_pos(pos)
    check_positive_int(k, "k")
    num_nodes, dim = pos.shape
    batch = check_batch(batch, num_nodes, pos.device)
    pos = pos.detach()
    if num_nodes == 0:
        return torch.empty(2, 0, dtype=torch.long, device=pos.device)  # [2, 0]
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)  # [N]

    graph_sizes = torch.bincount(batch)  # [G]
    node_graph_start = segment_starts(graph_sizes)[batch]  # [N]
    node_graph_size = graph_sizes[batch]  # [N]
    max_size = int(graph_sizes.max())
    num_kept = min(k, max_size)
    member = torch.arange(max_size, device=pos.device)  # [S], S = largest graph
    chunk = max(1, _CANDIDATES_PER_CHUNK // max_size)

    edges = []
    for first in range(0, num_nodes, chunk):
        receivers = torch.arange(first, min(first + chunk, num_nodes), device=pos.device)  # [R]
        senders = node_graph_start[receivers, None] + member  # [R, S]
        valid = member < node_graph_size[receivers, None]  # [R, S]
        if not self_loops:
            valid &= senders != receivers[:, None]
        senders = torch.where(valid, senders, receivers[:, None])  # [R, S]
        dist = torch.linalg.vector_norm(pos[senders] - pos[receivers, None], dim=-1)  # [R, S]
        dist = dist.masked_fill(~valid, torch.inf)
        nearest = torch.sort(dist, dim=1, stable=True).indices[:, :num_kept]  # [R, k]
        keep = valid.gather(1, nearest).flatten()  # [R k]
        src = senders.gather(1, nearest).flatten()[keep]  # [E_chunk]
        dst = receivers[:, None].expand(-1, num_kept).flatten()[keep]  # [E_chunk]
        perm = receiver_order(src, dst, num_nodes)  # [E_chunk]
        edges.append(torch.stack([src[perm], dst[perm]]))  # [2, E_chunk]
    return torch.cat(edges, dim=1)  # [2, E]
