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
