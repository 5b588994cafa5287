"""Fully connected graphs: every ordered pair of nodes in the same graph."""

import torch
from torch import Tensor

from ponita.graph._checks import check_batch
from ponita.graph._ragged import ragged_arange, segment_starts


def fully_connected_graph(
    batch: Tensor | None,
    num_nodes: int | None = None,
    self_loops: bool = True,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """Connects every node to every node of the same graph.

    The edges are built from the number of nodes per graph with ragged-range arithmetic, so memory is
    proportional to the number of edges :math:`\\sum_g N_g^2`, never to :math:`N^2` over the whole batch.

    Args:
        batch: graph id of each node, sorted non-decreasing (as ``torch_geometric`` batches are), or
            ``None`` for a single graph of ``num_nodes`` nodes.
        num_nodes: number of nodes ``N``. Required when ``batch`` is ``None``; otherwise optional, and
            it must equal ``batch.numel()``.
        self_loops: whether to include the edges ``i -> i``.
        device: where to build the edges when ``batch`` is ``None`` (default: the CPU). With a ``batch``
            the edges are on ``batch.device`` and ``device`` must be ``None``.

    Returns:
        ``edge_index`` (``edge_index[0]`` senders, ``edge_index[1]`` receivers), sorted by receiver and
        then by sender.

    Raises:
        ValueError: if ``batch`` and ``num_nodes`` are both ``None`` or disagree, if ``num_nodes`` is
            negative, if ``batch`` is not a sorted integer tensor of shape ``[N]``, or if ``device`` is
            given together with ``batch``.

    Shapes:
        batch ``[N]`` → ``[2, E]`` with :math:`E = \\sum_g N_g^2` (:math:`\\sum_g N_g (N_g - 1)` without
        self-loops).

    Example:
        >>> fully_connected_graph(torch.tensor([0, 0, 1]), self_loops=False)
        tensor([[1, 0],
                [0, 1]])
        >>> fully_connected_graph(None, num_nodes=2)
        tensor([[0, 1, 0, 1],
                [0, 0, 1, 1]])
    """
    if batch is None:
        if num_nodes is None:
            raise ValueError(
                "fully_connected_graph needs batch or num_nodes; pass num_nodes=N for a single graph."
            )
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
            raise ValueError(f"num_nodes must be an integer >= 0, got {num_nodes!r}.")
        counts = torch.tensor([num_nodes], device=device)  # [G]
    else:
        if device is not None:
            raise ValueError(
                f"device={device!r} is only for batch=None; with a batch the edges are on batch's device. "
                "Pass device=None, or move batch."
            )
        batch = check_batch(batch, batch.shape[0] if num_nodes is None else num_nodes, device=None)
        counts = torch.unique_consecutive(batch, return_counts=True)[1]  # [G]
    return fully_connected_edges(counts, self_loops)


def fully_connected_edges(counts: Tensor, self_loops: bool) -> Tensor:
    """:func:`fully_connected_graph` of consecutive graphs with ``counts[g]`` nodes each (unchecked).

    One host sync (the number of edges, in :func:`ragged_arange`); a single graph of known size can
    skip even that with :func:`fully_connected_single`.

    Shapes:
        counts ``[G]`` → ``[2, E]``
    """
    node_starts = segment_starts(counts)  # [G]
    graph, local = ragged_arange(counts * counts)  # [E], [E]
    size = counts[graph]  # [E]
    # Within a graph, edge `local` runs receiver-major: receiver local // N_g, sender local % N_g.
    dst = node_starts[graph] + local // size  # [E]
    src = node_starts[graph] + local % size  # [E]
    if not self_loops:
        keep = src != dst  # [E]
        src, dst = src[keep], dst[keep]
    return torch.stack([src, dst])  # [2, E]


def fully_connected_single(num_nodes: int, self_loops: bool, device: torch.device) -> Tensor:
    """:func:`fully_connected_graph` of one graph of ``num_nodes`` nodes, with no host sync.

    The edge count is known on the host (:math:`N^2`, or :math:`N(N-1)` without self-loops), so the
    edges come from static-shape arithmetic that ``torch.compile(fullgraph=True)`` captures.

    Shapes:
        → ``[2, N²]`` (``[2, N(N − 1)]`` without self-loops)

    Example:
        >>> fully_connected_single(2, self_loops=False, device=torch.device("cpu"))
        tensor([[1, 0],
                [0, 1]])
    """
    local = torch.arange(num_nodes * num_nodes, device=device)  # [N²], receiver-major
    dst, src = local // num_nodes, local % num_nodes  # [N²], [N²]
    if not self_loops:
        # Drop the N diagonal entries with static shapes: each receiver keeps N - 1 senders, skipping itself.
        rank = torch.arange(num_nodes * (num_nodes - 1), device=device)  # [N(N-1)]
        dst = rank // max(num_nodes - 1, 1)  # [N(N-1)]
        sender_rank = rank % max(num_nodes - 1, 1)  # [N(N-1)]
        src = sender_rank + (sender_rank >= dst).long()  # [N(N-1)]
    return torch.stack([src, dst])  # [2, E]
