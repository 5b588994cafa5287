"""Readouts from functions on an orientation grid to scalars, vectors and l=2 tensors."""

import torch
from torch import Tensor, nn


def scalar_readout(f: Tensor) -> Tensor:
    r"""Mean over the grid, :math:`s = \frac{1}{O}\sum_o f(o)`: invariant.

    Shapes:
        f ``[N, O, C]`` → ``[N, C]``

    Example:
        >>> scalar_readout(torch.tensor([[[1.0], [3.0]]]))
        tensor([[2.]])
    """
    return f.mean(dim=1)


def vector_readout(f: Tensor, grid: Tensor) -> Tensor:
    r"""Equivariant vectors from the grid, :math:`v = \frac{1}{O}\sum_o f(o)\, o`.

    For a rotation grid, channels come in groups of :math:`n`, :math:`v = \frac1O \sum_a R_a f(a)`
    (the inverse of :func:`lift_vectors` up to scale).

    Shapes:
        f ``[N, O, V]``, grid ``[O, n]`` → ``[N, V, n]``; f ``[N, O, V·n]``, grid ``[O, n, n]`` → ``[N, V, n]``

    Example:
        >>> vector_readout(torch.tensor([[[1.0], [2.0]]]), torch.eye(2))
        tensor([[[0.5000, 1.0000]]])
    """
    num_ori = grid.shape[0]
    if grid.dim() == 2:
        return torch.einsum("nov,od->nvd", f, grid) / num_ori  # [N, V, n]
    f = f.unflatten(-1, (-1, grid.shape[-1]))  # [N, O, V, n]
    return torch.einsum("novk,odk->nvd", f, grid) / num_ori  # [N, V, n]


class SphericalTensorReadout(nn.Module):
    r"""Degree-``l`` spherical tensors from functions on an S² grid (e.g. l = 2 for traceless symmetric tensors).

    .. math::
        t_m = \frac{1}{O} \sum_o f(o)\, Y_{l,m}(o)

    with e3nn's real spherical harmonics (``normalization="component"``), so :math:`t` transforms
    with the Wigner matrix :math:`D^l(R)` when the input is rotated. e3nn is imported here, when such
    a readout is built, so ``import ponita`` does not load it.

    Args:
        grid: the S² grid, ``[O, 3]``.
        l: degree of the output.

    Shapes:
        f ``[N, O, T]`` → ``[N, T, 2l + 1]``

    Example:
        >>> from ponita.geometry import fibonacci_grid_s2
        >>> SphericalTensorReadout(fibonacci_grid_s2(20).float())(torch.randn(4, 20, 3)).shape
        torch.Size([4, 3, 5])
    """

    def __init__(self, grid: Tensor, l: int = 2) -> None:  # noqa: E741 (l is the standard name)
        super().__init__()
        if grid.dim() != 2 or grid.shape[-1] != 3:
            raise ValueError(f"SphericalTensorReadout needs an S² grid of shape [O, 3], got {list(grid.shape)}.")
        from e3nn import o3  # only this readout needs e3nn

        self.l = l
        harmonics = o3.spherical_harmonics(l, grid, normalize=True, normalization="component")  # [O, 2l+1]
        self.register_buffer("harmonics", harmonics)

    def forward(self, f: Tensor) -> Tensor:
        return torch.einsum("not,om->ntm", f, self.harmonics) / self.harmonics.shape[0]  # [N, T, 2l+1]

    def extra_repr(self) -> str:
        return f"l={self.l}, num_ori={self.harmonics.shape[0]}"
