"""Polynomial embedding of invariant attributes."""

import torch
from torch import Tensor, nn


class PolynomialFeatures(nn.Module):
    r"""All monomials of the inputs up to a given degree (full, non-symmetrised tensor powers).

    .. math::
        \mathrm{poly}(x) = \big[x,\; x \otimes x,\; \dots,\; x^{\otimes d}\big]

    so ``degree=3`` gives terms up to cubic, as in the original PONITA code (whose ports call this
    ``degree=2``). With :math:`K` inputs there are :math:`K + K^2 + \dots + K^d` features.

    Args:
        degree: highest power :math:`d \geq 1`.

    Shapes:
        ``[..., K]`` → ``[..., K + K^2 + ... + K^d]``

    Example:
        >>> PolynomialFeatures(2)(torch.tensor([[2.0, 3.0]]))
        tensor([[2., 3., 4., 6., 6., 9.]])
    """

    def __init__(self, degree: int) -> None:
        super().__init__()
        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree must be an integer ≥ 1 (3 means up to cubic terms), got {degree!r}.")
        self.degree = degree

    def num_features(self, num_inputs: int) -> int:
        """Number of output features for ``num_inputs`` inputs."""
        return sum(num_inputs**power for power in range(1, self.degree + 1))

    def forward(self, x: Tensor) -> Tensor:
        terms = [x]
        for _ in range(self.degree - 1):
            terms.append((terms[-1].unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2))  # [..., K^(p+1)]
        return torch.cat(terms, dim=-1)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
