"""The edge order every graph builder returns: sorted by receiver, then by sender."""

import torch
from torch import Tensor


def receiver_order(src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    """The permutation that sorts edges by receiver, then by sender.

    Args:
        src: sender of each edge.
        dst: receiver of each edge.
        num_nodes: number of nodes ``N``; every index must be below it.

    Returns:
        ``perm`` such that ``dst[perm]`` is non-decreasing and ``src[perm]`` increases within each receiver.

    Shapes:
        src ``[E]``, dst ``[E]`` → ``[E]``

    Example:
        >>> receiver_order(torch.tensor([2, 0, 1]), torch.tensor([1, 1, 0]), num_nodes=3)
        tensor([2, 1, 0])
    """
    return torch.argsort(dst * num_nodes + src)  # [E]
