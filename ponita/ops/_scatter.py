"""Scatter reductions over the first dimension, in plain torch.

These replace ``torch_scatter`` (which has no wheels) for the few reductions the core needs.
``Tensor.index_add_`` is deterministic on the CPU; on CUDA it uses atomics.
"""

import torch
from torch import Tensor


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    r"""Sums the rows of ``src`` that share an index.

    .. math::
        y_i = \sum_{k : \mathrm{index}_k = i} \mathrm{src}_k

    Args:
        src: values to reduce.
        index: target row of each value.
        dim_size: number of output rows; rows that receive nothing are zero.

    Returns:
        The per-index sums.

    Shapes:
        src ``[M, *]``, index ``[M]`` → ``[dim_size, *]``

    Example:
        >>> scatter_sum(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 2, 0]), 3)
        tensor([4., 0., 2.])
    """
    out = src.new_zeros((dim_size, *src.shape[1:]))  # [dim_size, *]
    return out.index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    r"""Averages the rows of ``src`` that share an index (zero where none).

    .. math::
        y_i = \frac{1}{\max(1, |\{k : \mathrm{index}_k = i\}|)} \sum_{k : \mathrm{index}_k = i} \mathrm{src}_k

    Args:
        src: values to reduce.
        index: target row of each value.
        dim_size: number of output rows.

    Returns:
        The per-index means.

    Shapes:
        src ``[M, *]``, index ``[M]`` → ``[dim_size, *]``

    Example:
        >>> scatter_mean(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 2, 0]), 3)
        tensor([2., 0., 2.])
    """
    total = scatter_sum(src, index, dim_size)  # [dim_size, *]
    count = scatter_sum(torch.ones_like(index, dtype=src.dtype), index, dim_size).clamp_(min=1)  # [dim_size]
    return total / count.view(-1, *([1] * (src.dim() - 1)))
