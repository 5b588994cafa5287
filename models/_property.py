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
from ponita.graph import fully_connected_graph, lift_edges_to_oriented_points, num_graphs
from ponita.ops import scatter_mean, scatter_sum

from ._checkpoint import register_model
from ._network_model import NetworkModel, graph_fields
from ._zoo_config import NetworkModelConfig, statistic


@dataclass
class RegressorConfig(NetworkModelConfig):
    """Everything :class:`PonitaRegressor` is built from.

    Attributes:
        mean: :math:`\\mu`, the training mean of the target (a statistic).
        std: :math:`\\sigma`, the training (population) standard deviation of the target; positive (a statistic).
        input_dim: per-atom input features (``data.x``; the data's).
        lift_bonds: PONITA's QM9 point cloud (``num_ori=-1``): every directed bond (``data.edge_index``)
            becomes an oriented point at its receiving atom, all oriented points of a molecule are
            connected, and their outputs are averaged per atom before the sum over atoms; needs
            ``space="R3xS2-points"``. Otherwise the network sees the atoms and builds its own graph.
        network: the :class:`ponita.Ponita` options except the input and output sizes, ``task_level`` and
            ``kernel_condition_dim``, which the regressor sets.
    """

    mean: float = statistic(example=0.0)
    std: float = statistic(example=1.0)
    input_dim: int = statistic(example=1)
    lift_bonds: bool = False
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ValueError(f"std must be positive, got {self.std}.")
        space = self.network.get("space", "R3xS2")
        if self.lift_bonds != (space == "R3xS2-points"):
            needed = "R3xS2-points" if self.lift_bonds else "a space that builds its own graph"
            raise ValueError(f"lift_bonds={self.lift_bonds} goes with space={needed}, got {space!r}; the lifted preset "
                             "sets both.")
        super().__post_init__()

    def derived_network_options(self) -> dict[str, Any]:
        task_level = "node" if self.lift_bonds else "graph"  # lifted points are averaged per atom first
        return {"input_dim": self.input_dim, "output_dim": 1, "task_level": task_level, "input_dim_vec": 0,
                "output_dim_vec": 0, "kernel_condition_dim": 0}


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
        inputs = self._inputs(data)
        scalar, _ = self.network(inputs)  # [G, 1], or [M, 1] per lifted point
        if not self.config.lift_bonds:
            return scalar[:, 0]
        atoms = scatter_mean(scalar[:, 0], inputs.atom_index, data.pos.shape[0])  # [N]
        return scatter_sum(atoms, inputs.atom_batch, num_graphs(data))  # [G]

    def forward(self, data: Data) -> Tensor:
        """Predicted property ``[G]`` in the target's unit (float64)."""
        return self.standardised(data).double() * self.std + self.mean

    def _inputs(self, data: Data) -> Data:
        x = data.x.to(self.network.embedding.weight.dtype)  # [N, F]
        if not self.config.lift_bonds:
            return Data(pos=data.pos, x=x, **graph_fields(data))
        batch = data.batch if data.batch is not None else torch.zeros_like(data.pos[:, 0], dtype=torch.long)  # [N]
        connect = fully_connected_graph(batch, data.pos.shape[0])  # [2, E]
        lifted = lift_edges_to_oriented_points(data.pos, data.edge_index, connect_index=connect)
        index = lifted.node_index  # [M]
        return Data(pos=lifted.pos, ori=lifted.ori, x=x[index], edge_index=lifted.edge_index, batch=batch[index],
                    atom_index=index, atom_batch=batch)
