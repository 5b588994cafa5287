"""The shared kernel basis: an MLP on polynomial features of the invariants."""

from torch import Tensor, nn

from ponita.nn._gelu import GELU
from ponita.nn._polynomial_features import PolynomialFeatures


class KernelBasis(nn.Module):
    r"""Embeds bi-invariant attributes into basis functions shared by all layers of a network.

    .. math::
        \varphi(a) = \mathrm{GELU}\big(W_2\, \mathrm{GELU}(W_1\, \mathrm{poly}(a) + b_1) + b_2\big)

    Each layer then forms its kernel as a linear map of :math:`\varphi` (Bekkers et al. 2024, §4),
    so the basis is computed once per forward pass.

    Args:
        num_invariants: number :math:`K` of attributes per pair.
        hidden_dim: width of the hidden layer.
        basis_dim: number :math:`B` of basis functions.
        degree: degree of :class:`PolynomialFeatures`.

    Shapes:
        ``[..., K]`` → ``[..., B]``

    Example:
        >>> KernelBasis(2, 16, 8, degree=3)(torch.randn(5, 4, 2)).shape
        torch.Size([5, 4, 8])
    """

    def __init__(self, num_invariants: int, hidden_dim: int, basis_dim: int, degree: int) -> None:
        super().__init__()
        self.num_invariants, self.hidden_dim, self.basis_dim = num_invariants, hidden_dim, basis_dim
        self.polynomial = PolynomialFeatures(degree)
        self.mlp = nn.Sequential(
            nn.Linear(self.polynomial.num_features(num_invariants), hidden_dim),
            GELU(),
            nn.Linear(hidden_dim, basis_dim),
            GELU(),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, invariants: Tensor) -> Tensor:
        return self.mlp(self.polynomial(invariants))

    def extra_repr(self) -> str:
        return f"num_invariants={self.num_invariants}, basis_dim={self.basis_dim}"
