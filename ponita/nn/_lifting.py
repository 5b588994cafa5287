"""Lifting of scalar and vector point features to functions on an orientation grid."""

import torch
from torch import Tensor


def lift_scalars(x: Tensor, num_ori: int) -> Tensor:
    r"""Copies scalars to every grid orientation, :math:`f_s(o) = s`.

    Shapes:
        x ``[N, F]`` → ``[N, O, F]``

    Example:
        >>> lift_scalars(torch.ones(2, 3), 4).shape
        torch.Size([2, 4, 3])
    """
    return x.unsqueeze(1).expand(-1, num_ori, -1)  # [N, O, F]


def lift_vectors(vec: Tensor, grid: Tensor) -> Tensor:
    r"""Projects vectors on the grid, :math:`f_v(o) = v \cdot o`, or on the axes of rotations.

    For a grid of directions :math:`o` (``[O, n]``) each vector gives one channel. For a grid of
    rotations :math:`R` (``[O, n, n]``) each vector gives :math:`n` channels, :math:`R^\top v`.

    Shapes:
        vec ``[N, V, n]``, grid ``[O, n]`` → ``[N, O, V]``; grid ``[O, n, n]`` → ``[N, O, V·n]``

    Example:
        >>> lift_vectors(torch.tensor([[[1.0, 2.0]]]), torch.eye(2))
        tensor([[[1.],
                 [2.]]])
    """
    if grid.dim() == 2:
        return torch.einsum("nvd,od->nov", vec, grid)  # [N, O, V]
    return torch.einsum("nvd,odk->novk", vec, grid).flatten(-2)  # [N, O, V·n]
