"""Fully connected graphs: every ordered pair of nodes in the same graph."""

from collections.abc import Sequence

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
    sizes: Sequence[int] | None = None,
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
        sizes: the number of nodes of each graph, when the host knows them (e.g. :func:`graph_sizes` of a
            ``Batch``); then nothing waits for the device, and ``batch`` is only checked to be as long as
            ``sum(sizes)``. Without them the sizes are read from ``batch`` (host synchronisations).

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
    if sizes is not None:
        sizes = [int(n) for n in sizes]
        total = sum(sizes)
        expected = batch.shape[0] if batch is not None else num_nodes
        if min(sizes, default=0) < 0 or (expected is not None and total != expected):
            raise ValueError(f"sizes must be node counts >= 0 summing to the {expected} nodes, got {sizes}.")
        where = batch.device if batch is not None else torch.device(device or "cpu")
        return fully_connected_sizes(sizes, self_loops, where)
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


def fully_connected_edges(counts: Tensor, self_loops: bool, num_edges: int | None = None) -> Tensor:
    """:func:`fully_connected_graph` of consecutive graphs with ``counts[g]`` nodes each (unchecked).

    Given ``num_edges`` (:func:`num_fully_connected_edges` of the sizes, known on the host) it never waits
    for the device; otherwise it reads the edge count from it (one host synchronisation).

    Shapes:
        counts ``[G]`` → ``[2, E]``
    """
    node_starts = segment_starts(counts)  # [G]
    # Each receiver has N_g senders, or N_g - 1 without self-loops; edges run receiver-major per graph.
    senders_per_receiver = counts if self_loops else (counts - 1).clamp(min=0)  # [G]
    graph, local = ragged_arange(counts * senders_per_receiver, num_edges)  # [E], [E]
    width = senders_per_receiver[graph].clamp(min=1)  # [E]
    dst = local // width  # [E], local receiver
    src = local % width  # [E], local sender (rank among the receiver's senders)
    if not self_loops:
        src = src + (src >= dst).long()  # skip the receiver itself, with static shapes
    start = node_starts[graph]  # [E]
    return torch.stack([start + src, start + dst])  # [2, E]


def fully_connected_sizes(sizes: Sequence[int], self_loops: bool, device: torch.device) -> Tensor:
    """:func:`fully_connected_graph` of consecutive graphs of these sizes, known on the host (unchecked).

    Never waits for the device: the edge count comes from ``sizes``, and on CUDA the sizes are copied
    from pinned memory without blocking.

    Shapes:
        → ``[2, E]``
    """
    counts = torch.tensor(list(sizes), dtype=torch.long)  # [G]
    if device.type == "cuda":  # a pageable copy would wait for the stream
        counts = counts.pin_memory()
    counts = counts.to(device, non_blocking=True)
    return fully_connected_edges(counts, self_loops, num_fully_connected_edges(sizes, self_loops))


def num_fully_connected_edges(sizes: Sequence[int], self_loops: bool) -> int:
    """The number of edges of the fully connected graphs of these sizes: Σ N², or Σ N(N − 1) without self-loops.

    Example:
        >>> num_fully_connected_edges([3, 2], self_loops=False)
        8
    """
    return sum(n * n if self_loops else n * (n - 1) for n in sizes)


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


def graph_sizes(data: object) -> list[int] | None:
    """The number of nodes of each graph of a batch, where the host knows it without asking the device.

    From ``data.graph_sizes`` (a list of ints a caller may set), or from the collation record that a
    ``torch_geometric`` ``Batch`` keeps on the CPU (on any device the batch is moved to). ``None`` when
    neither is there (a plain ``Data``, or a batch whose sizes only a device tensor holds).

    Example:
        >>> from torch_geometric.data import Batch, Data
        >>> graph_sizes(Batch.from_data_list([Data(pos=torch.zeros(3, 3)), Data(pos=torch.zeros(2, 3))]))
        [3, 2]
    """
    sizes = getattr(data, "graph_sizes", None)
    if sizes is not None:
        return [int(n) for n in sizes]
    slices = getattr(data, "_slice_dict", None)
    if slices and isinstance(slices.get("pos"), torch.Tensor) and slices["pos"].device.type == "cpu":
        return slices["pos"].diff().tolist()
    return None


def num_graphs(data: object) -> int:
    """The number of graphs in ``data``: ``Batch.num_graphs`` or :func:`graph_sizes` (known on the host), 1
    without ``data.batch``; otherwise read from ``data.batch`` (one host synchronisation).

    Example:
        >>> from torch_geometric.data import Data
        >>> num_graphs(Data(pos=torch.zeros(3, 3))), num_graphs(Data(pos=torch.zeros(3, 3), batch=torch.tensor([0, 0, 1])))
        (1, 2)
    """
    known = getattr(data, "num_graphs", None)
    if isinstance(known, int):
        return known
    sizes = graph_sizes(data)
    if sizes is not None:
        return len(sizes)
    batch = getattr(data, "batch", None)
    return 1 if batch is None else int(batch.max()) + 1
