r"""Molecular property regression with :class:`ponita.Ponita`: a sum of per-atom outputs, de-standardised.

The QM9 setup of PONITA (Bekkers et al., ICLR 2024): per-atom input features, one scalar per atom summed
over the molecule, and the target standardised by the training mean :math:`\mu` and standard deviation
:math:`\sigma`,

.. math::
    \hat y = \sigma \sum_i \varphi(x, p)_i + \mu .
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from ponita import Ponita

from ._checkpoint import register_model
from ._network_model import NetworkModel


@dataclass
class RegressorConfig:
    """Constructor arguments of :class:`PonitaRegressor`.

    Attributes:
        mean: :math:`\\mu`, the training mean of the target.
        std: :math:`\\sigma`, the training (population) standard deviation of the target; positive.
        input_dim: per-atom input features (``data.x``).
        use_bonds: give the molecule's bonds (``data.edge_index``) to the network, e.g. to lift them to
            oriented points (``space="R3xS2-lifted"``); otherwise the network builds its own graph.
        network: the :class:`ponita.Ponita` options except ``input_dim``, ``output_dim`` and ``task_level``.
    """

    mean: float
    std: float
    input_dim: int
    use_bonds: bool = False
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ValueError(f"std must be positive, got {self.std}.")


@register_model
class PonitaRegressor(NetworkModel):
    """Predicts one property per molecule: ``data.x`` ``[N, F]``, ``data.pos`` ``[N, 3]`` → ``[G]``.

    Example:
        >>> model = PonitaRegressor(RegressorConfig(1.0, 2.0, input_dim=3, network={"hidden_dim": 8, "num_layers": 1}))
        >>> model(Data(pos=torch.randn(4, 3), x=torch.randn(4, 3))).shape
        torch.Size([1])
    """

    config_class = RegressorConfig

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        self.config = config
        self.network = Ponita(input_dim=config.input_dim, output_dim=1, task_level="graph", **config.network)
        self.register_buffer("mean", torch.tensor(float(config.mean), dtype=torch.float64))
        self.register_buffer("std", torch.tensor(float(config.std), dtype=torch.float64))

    def standardised(self, data: Data) -> Tensor:
        """The network's sum over atoms, :math:`(\\hat y - \\mu) / \\sigma`, ``[G]``."""
        scalar, _ = self.network(self._inputs(data))  # [G, 1]
        return scalar[:, 0]

    def forward(self, data: Data) -> Tensor:
        """Predicted property ``[G]`` in the target's unit (float64)."""
        return self.standardised(data).double() * self.std + self.mean

    def _inputs(self, data: Data) -> Data:
        inputs = Data(pos=data.pos, x=data.x.to(self.network.embedding.weight.dtype), batch=data.batch)
        if self.config.use_bonds:
            inputs.edge_index = data.edge_index
        return inputs
