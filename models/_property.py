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
from ._network_model import NetworkModel, graph_fields
from ._zoo_config import NetworkModelConfig, statistic


@dataclass
class RegressorConfig(NetworkModelConfig):
    """Everything :class:`PonitaRegressor` is built from.

    PONITA's QM9 point cloud of bonds (the paper's ``num_ori=-1``: every directed bond an oriented point at its
    receiving atom, all of a molecule's points connected, outputs averaged per atom) is the network option
    ``space="R3xS2-lifted"`` with ``connect_lifted="all"``; the regressor then gives the network the bonds
    (``data.edge_index``).

    Attributes:
        mean: :math:`\\mu`, the training mean of the target (a statistic).
        std: :math:`\\sigma`, the training (population) standard deviation of the target; positive (a statistic).
        input_dim: per-atom input features (``data.x``; the data's).
        network: the :class:`ponita.Ponita` options except the input and output sizes, ``task_level`` and
            ``kernel_condition_dim``, which the regressor sets.
    """

    mean: float = statistic(example=0.0)
    std: float = statistic(example=1.0)
    input_dim: int = statistic(example=1)
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ValueError(f"std must be positive, got {self.std}.")
        super().__post_init__()

    def derived_network_options(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": 1, "task_level": "graph", "input_dim_vec": 0,
                "output_dim_vec": 0, "kernel_condition_dim": 0}

    @classmethod
    def upgrade_stored(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A config stored before 2026-12, when the regressor lifted the bonds itself (``lift_bonds=True`` with
        ``space="R3xS2-points"``), in today's options: the same network on ``space="R3xS2-lifted"``,
        ``connect_lifted="all"`` (same weights, same outputs)."""
        values = dict(values)
        if values.pop("lift_bonds", False):
            values["network"] = {**values.get("network", {}), "space": "R3xS2-lifted", "connect_lifted": "all"}
        return values


@register_model
class PonitaRegressor(NetworkModel):
    """Predicts one property per molecule: ``data.x`` ``[N, F]``, ``data.pos`` ``[N, 3]`` → ``[G]``.

    Example:
        >>> model = PonitaRegressor(RegressorConfig(1.0, 2.0, input_dim=3, network={"hidden_dim": 8, "num_layers": 1}))
        >>> model(Data(pos=torch.randn(4, 3), x=torch.randn(4, 3))).shape
        torch.Size([1])
    """

    config_class = RegressorConfig
    description = "a molecular property regressor"

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        self.config = config
        self.network = Ponita.from_config(config.network_config())
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
        """Positions, features and the batch; and the bonds, for a network whose points are made from edges."""
        inputs = Data(pos=data.pos, x=data.x.to(self.network.embedding.weight.dtype), **graph_fields(data))
        if self.network.space.points_from_edges:
            inputs.edge_index = data.edge_index  # [2, B]
        return inputs
