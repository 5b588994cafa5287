"""Receiver-sorted compressed sparse rows (CSR): the graph format of the message-passing kernels."""

from typing import NamedTuple

import torch
from torch import Tensor


class ReceiverCSR(NamedTuple):
    """A graph whose edges are sorted by receiver, with the row pointer over receivers.

    Built once per forward pass by :func:`receiver_csr` and shared by every layer. Edge tensors
    (kernel bases, attributes) must be in the same order as ``src``/``dst``.

    Attributes:
        src: sender of each edge, ``[E]``.
        dst: receiver of each edge (non-decreasing), ``[E]``.
        row_ptr: edges of receiver ``i`` are ``row_ptr[i]:row_ptr[i + 1]``, ``[N + 1]``.
        num_nodes: ``N``.
        sender_order: the edges (indices into ``src``/``dst``) sorted by sender, receivers ascending within a
            sender, ``[E]``: the transposed graph, which the backward of a convolution sums over.
        sender_ptr: edges of sender ``j`` are ``sender_order[sender_ptr[j]:sender_ptr[j + 1]]``, ``[N + 1]``.
    """

    src: Tensor
    dst: Tensor
    row_ptr: Tensor
    num_nodes: int
    sender_order: Tensor
    sender_ptr: Tensor

    @property
    def num_edges(self) -> int:
        return self.src.numel()


def receiver_csr(edge_index: Tensor, num_nodes: int) -> tuple[ReceiverCSR, Tensor]:
    """Sorts edges by (receiver, sender) and builds the receiver row pointer.

    Args:
        edge_index: ``edge_index[0]`` senders, ``edge_index[1]`` receivers.
        num_nodes: number of nodes ``N``; every index must be below it.

    Returns:
        The CSR graph and ``perm``, the permutation that puts edge tensors in CSR order
        (``edge_tensor[perm]``). ``perm`` is the identity when the input is already sorted.

    Raises:
        ValueError: if ``edge_index`` is not ``[2, E]`` or holds an index outside ``[0, N)``.

    Shapes:
        edge_index ``[2, E]`` → ``(ReceiverCSR, perm [E])``

    Example:
        >>> csr, perm = receiver_csr(torch.tensor([[1, 0, 2], [0, 2, 0]]), 3)
        >>> csr.src, csr.row_ptr, perm
        (tensor([1, 2, 0]), tensor([0, 2, 2, 3]), tensor([0, 2, 1]))
        >>> csr.sender_order, csr.sender_ptr  # edge 2 (0 → 2), then 0 (1 → 0), then 1 (2 → 0)
        (tensor([2, 0, 1]), tensor([0, 1, 2, 3]))
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"edge_index must have shape [2, E] (senders, receivers), got {list(edge_index.shape)}."
        )
    if edge_index.numel() > 0 and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(
            f"edge_index holds node indices outside [0, {num_nodes}): "
            f"min {int(edge_index.min())}, max {int(edge_index.max())}. Check that it matches the nodes."
        )
    return receiver_csr_unchecked(edge_index, num_nodes)


def receiver_csr_unchecked(edge_index: Tensor, num_nodes: int) -> tuple[ReceiverCSR, Tensor]:
    """:func:`receiver_csr` for an ``edge_index`` already checked by the caller.

    No host synchronisation and no data-dependent shape: the sorts are ``argsort``s and the row
    pointers ``searchsorted``s of the sorted indices, so ``torch.compile(fullgraph=True)`` captures it.
    The sender order is built here, once per forward pass, for every backward that sums at senders.
    """
    src, dst = edge_index[0], edge_index[1]  # [E], [E]
    perm = torch.argsort(dst * max(num_nodes, 1) + src, stable=True)  # [E]
    src, dst = src[perm], dst[perm]
    nodes = torch.arange(num_nodes + 1, dtype=dst.dtype, device=dst.device)  # [N + 1]
    row_ptr = torch.searchsorted(dst, nodes)  # [N + 1]: first edge whose receiver is ≥ i
    sender_order = torch.argsort(src, stable=True)  # [E]; stable: receivers stay ascending within a sender
    sender_ptr = torch.searchsorted(src[sender_order], nodes)  # [N + 1]
    return ReceiverCSR(src, dst, row_ptr, num_nodes, sender_order, sender_ptr), perm
