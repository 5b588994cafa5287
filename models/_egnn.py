r"""The N-body EGNN of Satorras, Hoogeboom and Welling, "E(n) Equivariant Graph Neural Networks" (ICML 2021).

A baseline for :class:`ponita.models.PonitaNBody`, written from the paper and its N-body setup. Each
layer :math:`l` updates features :math:`h` and coordinates :math:`x` over the fully connected graph
without self-loops:

.. math::
    m_{ij} = \phi_e(h_i, h_j, \lVert x_i - x_j\rVert^2, a_{ij}), \qquad
    x_i \leftarrow x_i + \frac{1}{N - 1}\sum_{j \ne i} (x_i - x_j)\, \phi_x(m_{ij}) + \phi_v(h_i)\, v_i,

.. math::
    h_i \leftarrow h_i + \phi_h\big(h_i, \textstyle\sum_{j \ne i} m_{ij}\big),

with the edge attributes :math:`a_{ij} = (q_i q_j, \lVert x_i^0 - x_j^0 \rVert^2)` of the input
positions, the input features :math:`h_i^0 = W \lVert v_i \rVert`, SiLU activations, each term of the
coordinate sum clipped to :math:`\pm 100`, and the last layer of :math:`\phi_x` initialised with
Xavier gain 0.001. The output is the coordinates after the last layer.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ponita.graph import fully_connected_graph, graph_sizes
from ponita.ops import scatter_mean, scatter_sum

from ._checkpoint import register_model


@dataclass
class EGNNConfig:
    """Constructor arguments of :class:`EGNNNBody` (defaults: the paper's N-body model)."""

    hidden_dim: int = 64
    num_layers: int = 4

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.num_layers < 1:
            raise ValueError(f"hidden_dim and num_layers must be ≥ 1, got {self.hidden_dim}, {self.num_layers}.")


class EGNNLayer(nn.Module):
    """One velocity-aware E(n)-equivariant layer (see the module docstring).

    Args:
        hidden_dim: features per node.
        edge_dim: edge attributes per edge.
    """

    def __init__(self, hidden_dim: int, edge_dim: int) -> None:
        super().__init__()
        self.hidden_dim, self.edge_dim = hidden_dim, edge_dim
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden_dim + 1 + edge_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim), nn.SiLU()
        )
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.coord_mlp = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, 1, bias=False)
        )
        self.velocity_mlp = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for mlp in (self.edge_mlp, self.node_mlp, self.coord_mlp, self.velocity_mlp):
            for module in mlp:
                if isinstance(module, nn.Linear):
                    module.reset_parameters()
        nn.init.xavier_uniform_(self.coord_mlp[-1].weight, gain=0.001)

    def forward(self, h: Tensor, x: Tensor, vel: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        """New features ``[N, C]`` and coordinates ``[N, 3]``; ``edge_index`` ``[2, E]`` (sender, receiver)."""
        sender, receiver = edge_index
        difference = x[receiver] - x[sender]  # [E, 3]
        radial = difference.square().sum(-1, keepdim=True)  # [E, 1]
        message = self.edge_mlp(torch.cat([h[receiver], h[sender], radial, edge_attr], dim=-1))  # [E, C]
        shift = (difference * self.coord_mlp(message)).clamp(-100.0, 100.0)  # [E, 3]
        x = x + scatter_mean(shift, receiver, x.shape[0]) + self.velocity_mlp(h) * vel  # [N, 3]
        h = h + self.node_mlp(torch.cat([h, scatter_sum(message, receiver, h.shape[0])], dim=-1))  # [N, C]
        return h, x

    def extra_repr(self) -> str:
        return f"hidden_dim={self.hidden_dim}, edge_dim={self.edge_dim}"


@register_model
class EGNNNBody(nn.Module):
    """The EGNN N-body forecaster: positions, velocities and charges → positions ``[N, 3]``.

    Example:
        >>> model = EGNNNBody(EGNNConfig(hidden_dim=8, num_layers=2))
        >>> data = Data(pos=torch.randn(5, 3), vel=torch.randn(5, 3), charge=torch.ones(5, 1))
        >>> model(data).shape
        torch.Size([5, 3])
    """

    config_class = EGNNConfig
    description = "an EGNN N-body forecaster"

    def __init__(self, config: EGNNConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Linear(1, config.hidden_dim)
        self.layers = nn.ModuleList(EGNNLayer(config.hidden_dim, edge_dim=2) for _ in range(config.num_layers))

    @classmethod
    def from_config(cls, config: EGNNConfig) -> "EGNNNBody":
        return cls(config)

    @property
    def calibrated(self) -> bool:
        """Always true: EGNN has no data-dependent initialisation."""
        return True

    def calibrate(self, data: Data) -> None:
        """Nothing to do (EGNN has no data-dependent initialisation)."""

    def forward(self, data: Data) -> Tensor:
        """Predicted positions ``[N, 3]``."""
        pos, vel, charge = data.pos, data.vel, data.charge  # [N, 3], [N, 3], [N, 1]
        batch = data.batch if data.batch is not None else torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        edge_index = fully_connected_graph(batch, pos.shape[0], self_loops=False, sizes=graph_sizes(data))  # [2, E]
        sender, receiver = edge_index
        edge_attr = torch.cat(
            [charge[receiver] * charge[sender], (pos[receiver] - pos[sender]).square().sum(-1, keepdim=True)], dim=-1
        )  # [E, 2]
        h = self.embedding(vel.norm(dim=-1, keepdim=True))  # [N, C]
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, vel, edge_index, edge_attr)
        return x
