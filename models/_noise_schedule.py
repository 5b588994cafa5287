r"""EDM's variance-preserving noise schedule (Hoogeboom et al., ICML 2022), the ``polynomial_2`` default.

With :math:`T` steps, :math:`T + 1` times :math:`t = 0 \dots T` get

.. math::
    \bar\alpha^2(t) = \Big(1 - \big(\tfrac{x_t}{T + 1}\big)^{p}\Big)^2, \qquad
    x = \mathrm{linspace}(0, T + 1, T + 1),

(so :math:`x_t / (T + 1)` runs from 0 to 1; at :math:`t = T/2` it is exactly :math:`1/2` and
:math:`\bar\alpha^2 = 0.5625` for :math:`p = 2`), then the ratios :math:`\bar\alpha^2(t) / \bar\alpha^2(t - 1)`
are clipped to :math:`[0.001, 1]` and multiplied up again, and the result is squeezed into
:math:`[s, 1 - s]` by :math:`\bar\alpha^2 \leftarrow (1 - 2s)\,\bar\alpha^2 + s` with precision
:math:`s = 10^{-5}`. The network is conditioned on :math:`\gamma(t) = -\log(\bar\alpha^2 / \sigma^2)`,
:math:`\sigma^2 = 1 - \bar\alpha^2`, read from a table at :math:`\mathrm{round}(t\,T)` for
:math:`t \in [0, 1]`.
"""

import numpy as np
import torch
from torch import Tensor, nn


def polynomial_alphas2(steps: int = 1000, power: float = 2.0, precision: float = 1e-5, clip: float = 0.001) -> np.ndarray:
    r""":math:`\bar\alpha^2` at the :math:`T + 1` times of EDM's polynomial schedule (float64).

    Example:
        >>> alphas2 = polynomial_alphas2(1000, precision=0.0)
        >>> float(alphas2[0]), round(float(alphas2[500]), 12), bool(alphas2[1000] < 1e-8)  # last ratio clipped
        (1.0, 0.5625, True)
    """
    x = np.linspace(0, steps + 1, steps + 1)
    alphas2 = (1 - np.power(x / (steps + 1), power)) ** 2
    ratios = np.clip(alphas2 / np.concatenate([np.ones(1), alphas2[:-1]]), clip, 1.0)
    alphas2 = np.cumprod(ratios)
    return (1 - 2 * precision) * alphas2 + precision


class NoiseSchedule(nn.Module):
    r""":math:`\gamma(t) = -\log(\bar\alpha^2(t) / \sigma^2(t))` of EDM's polynomial schedule, as a table.

    Args:
        steps: :math:`T`.
        power: :math:`p` (2 for ``polynomial_2``).
        precision: :math:`s`.

    Shapes:
        ``t`` in :math:`[0, 1]`, any shape → :math:`\gamma` of the same shape.

    Example:
        >>> schedule = NoiseSchedule(1000)
        >>> gamma = schedule(torch.tensor([0.0, 1.0]))
        >>> [round(float(g), 2) for g in gamma]
        [-11.51, 11.51]
    """

    def __init__(self, steps: int = 1000, power: float = 2.0, precision: float = 1e-5) -> None:
        super().__init__()
        if steps < 1 or not power > 0 or not 0 < precision < 0.5:
            raise ValueError(f"need steps ≥ 1, power > 0 and 0 < precision < 0.5; got {steps}, {power}, {precision}.")
        self.steps = steps
        alphas2 = polynomial_alphas2(steps, power, precision)
        gamma = -(np.log(alphas2) - np.log(1 - alphas2))
        self.register_buffer("gamma_table", torch.from_numpy(gamma))  # [T + 1], float64

    def forward(self, t: Tensor) -> Tensor:
        """:math:`\\gamma` at the steps nearest to ``t`` (float64)."""
        return self.gamma_table[torch.round(t * self.steps).long()]

    @staticmethod
    def alpha(gamma: Tensor) -> Tensor:
        r""":math:`\bar\alpha = \sqrt{\mathrm{sigmoid}(-\gamma)}`."""
        return torch.sigmoid(-gamma).sqrt()

    @staticmethod
    def sigma(gamma: Tensor) -> Tensor:
        r""":math:`\sigma = \sqrt{\mathrm{sigmoid}(\gamma)}`."""
        return torch.sigmoid(gamma).sqrt()

    def extra_repr(self) -> str:
        return f"steps={self.steps}"
