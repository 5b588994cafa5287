"""Smooth polynomial cutoff window."""

import torch
from torch import Tensor, nn


class PolynomialCutoff(nn.Module):
    r"""Polynomial envelope that goes smoothly to zero at the cutoff (DimeNet, Klicpera et al. 2020, eq. 8).

    .. math::
        w(d) = \Big(1 - \tfrac{(p+1)(p+2)}{2} u^p + p(p+2) u^{p+1} - \tfrac{p(p+1)}{2} u^{p+2}\Big)\,
        \mathbb{1}[d < r_c], \qquad u = d / r_c

    :math:`w(0) = 1`, and :math:`w` and its first two derivatives vanish at :math:`r_c`.

    Args:
        radius: cutoff :math:`r_c > 0`.
        exponent: :math:`p` (default 6).

    Shapes:
        ``[...]`` → ``[...]``

    Example:
        >>> PolynomialCutoff(2.0)(torch.tensor([0.0, 3.0]))
        tensor([1., 0.])
    """

    def __init__(self, radius: float, exponent: int = 6) -> None:
        super().__init__()
        if radius <= 0:
            raise ValueError(f"radius must be positive, got {radius}.")
        self.register_buffer("radius", torch.tensor(float(radius)))
        self.exponent = exponent

    def forward(self, distance: Tensor) -> Tensor:
        p = self.exponent
        u = distance / self.radius
        envelope = (
            1.0 - (p + 1) * (p + 2) / 2 * u**p + p * (p + 2) * u ** (p + 1) - p * (p + 1) / 2 * u ** (p + 2)
        )
        return torch.where(u < 1.0, envelope, torch.zeros_like(envelope))

    def extra_repr(self) -> str:
        return f"radius={float(self.radius)}, exponent={self.exponent}"
