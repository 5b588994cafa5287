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


@dataclass
class NBodyConfig:
    """Constructor arguments of :class:`PonitaNBody`: the :class:`ponita.Ponita` options (see :class:`ponita.PonitaConfig`)
    except ``input_dim``, ``input_dim_vec``, ``output_dim``, ``output_dim_vec`` and ``task_level``, which it sets."""

    network: dict[str, Any] = field(default_factory=dict)


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
        self.network = Ponita(input_dim=1, input_dim_vec=1, output_dim=0, output_dim_vec=1, task_level="node",
                              **config.network)

    def forward(self, data: Data) -> Tensor:
        """Predicted positions ``[N, 3]``."""
        _, displacement = self.network(self._inputs(data))  # [N, 1, 3]
        return data.pos + displacement[:, 0]

    def _inputs(self, data: Data) -> Data:
        return Data(pos=data.pos, x=data.charge, vec=data.vel[:, None], **graph_fields(data))
