r"""N-body forecasting with :class:`ponita.Ponita`: from positions, velocities and charges to future positions.

The setup of PONITA's N-body experiment (Bekkers et al., ICLR 2024): a fully connected graph with
self-loops, the charge as one scalar and the velocity as one vector per particle, both lifted to the
orientation grid (:math:`[q, \langle v, o\rangle]`), one vector read out per particle and added to the
current position,

.. math::
    \hat p_i(t + \Delta) = p_i(t) + \varphi(p, v, q)_i .
"""

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torch_geometric.data import Data

from ponita import Ponita

from ._checkpoint import register_model
from ._network_model import NetworkModel, graph_fields
from ._zoo_config import NetworkModelConfig


@dataclass
class NBodyConfig(NetworkModelConfig):
    """Everything :class:`PonitaNBody` is built from: the :class:`ponita.Ponita` options (see
    :class:`ponita.PonitaConfig`) except the input and output sizes, ``task_level`` and ``kernel_condition_dim``,
    which it sets (one charge, one velocity in; one displacement out per particle)."""

    network: dict[str, Any] = field(default_factory=dict)

    def derived_network_options(self) -> dict[str, Any]:
        return {"input_dim": 1, "input_dim_vec": 1, "output_dim": 0, "output_dim_vec": 1, "task_level": "node",
                "kernel_condition_dim": 0}


@register_model
class PonitaNBody(NetworkModel):
    """Predicts each particle's future position as its position plus an equivariant displacement.

    Shapes:
        input ``data.pos``, ``data.vel`` ``[N, 3]``, ``data.charge`` ``[N, 1]``, optional ``data.batch``
        ``[N]`` → positions ``[N, 3]``.

    Example:
        >>> model = PonitaNBody(NBodyConfig({"hidden_dim": 8, "num_layers": 1, "num_ori": 4}))
        >>> data = Data(pos=torch.randn(5, 3), vel=torch.randn(5, 3), charge=torch.ones(5, 1))
        >>> model(data).shape
        torch.Size([5, 3])
    """

    config_class = NBodyConfig
    description = "a PONITA N-body forecaster"

    def __init__(self, config: NBodyConfig) -> None:
        super().__init__()
        self.config = config
        self.network = Ponita.from_config(config.network_config())

    def forward(self, data: Data) -> Tensor:
        """Predicted positions ``[N, 3]``."""
        _, displacement = self.network(self._inputs(data))  # [N, 1, 3]
        return data.pos + displacement[:, 0]

    def _inputs(self, data: Data) -> Data:
        return Data(pos=data.pos, x=data.charge, vec=data.vel[:, None], **graph_fields(data))
