r"""A complete zoo task in one module: the dipole moment of random point charges (used by the tests and docs).

Each sample is a cloud of 3 to 8 unit charges :math:`q_i = \pm 1` at positions :math:`p_i`; the target is
the vector

.. math::
    \mu = \sum_i q_i \, (p_i - \bar p),

which rotates with the cloud and ignores translations, so an SE(3)-equivariant network can learn it
exactly. The module holds the four things a task needs: options, a zoo model, the task class and,
beside it in ``presets/dipole/``, a preset. Run it with
``PONITA_TASKS=tests/train/dipole_task.py ponita train dipole --preset tiny``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita import Ponita
from ponita.models import NetworkModel, NetworkModelConfig, register_model, statistic
from ponita.train import Task, register_task


@dataclass
class DipoleOptions:
    """The ``task_options`` of ``dipole``: how many clouds to draw, and from which seed."""

    num_train: int = 64
    num_val: int = 16
    num_test: int = 32
    data_seed: int = 0

    def __post_init__(self) -> None:
        if min(self.num_train, self.num_val, self.num_test) < 1:
            raise ValueError("num_train, num_val and num_test must be ≥ 1.")


@dataclass
class DipoleModelConfig(NetworkModelConfig):
    """Everything :class:`DipoleModel` is built from: the target scale (a statistic: the training data's) and
    the network's options (the ``model:`` section of a config), except those the model derives itself."""

    scale: float = statistic(example=1.0)
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}.")
        super().__post_init__()  # checks the network's options

    def derived_network_options(self) -> dict[str, Any]:
        return {"input_dim": 1, "input_dim_vec": 0, "output_dim": 0, "output_dim_vec": 1, "task_level": "graph",
                "kernel_condition_dim": 0}


@register_model
class DipoleModel(NetworkModel):
    """A graph-level vector readout of a :class:`ponita.Ponita` fed the charges, times the RMS dipole norm."""

    config_class = DipoleModelConfig

    def __init__(self, config: DipoleModelConfig) -> None:
        super().__init__()
        self.config = config
        self.network = Ponita.from_config(config.network_config())
        self.register_buffer("scale", torch.tensor(float(config.scale)))

    def _inputs(self, data: Data) -> Data:
        return Data(pos=data.pos, x=data.charge, batch=data.batch)

    def forward(self, data: Data) -> Tensor:
        """Dipoles ``[G, 3]`` of the clouds in ``data``."""
        _, vector = self.network(self._inputs(data))  # [G, 1, 3]
        return vector[:, 0] * self.scale  # [G, 3]


def dipole_clouds(num: int, seed: int) -> list[Data]:
    """``num`` random clouds with ``pos`` ``[N, 3]``, ``charge`` ``[N, 1]`` and their ``dipole`` ``[1, 3]``."""
    generator = torch.Generator().manual_seed(seed)
    clouds = []
    for _ in range(num):
        size = int(torch.randint(3, 9, (), generator=generator))
        pos = torch.randn(size, 3, generator=generator)  # [N, 3]
        charge = torch.randint(0, 2, (size, 1), generator=generator).float() * 2 - 1  # [N, 1]
        dipole = (charge * (pos - pos.mean(0))).sum(0, keepdim=True)  # [1, 3]
        clouds.append(Data(pos=pos, charge=charge, dipole=dipole))
    return clouds


@register_task
class DipoleTask(Task):
    """Dipole moments of random point charges (a synthetic vector regression)."""

    name = "dipole"
    options_class = DipoleOptions
    models = {"ponita": DipoleModel}
    default_model = {"hidden_dim": 16, "num_layers": 2, "num_ori": 8}
    metrics = {"mae": "val dipole MAE"}
    monitor = "mae"
    rotate_fields = ("pos", "dipole")
    model_file = "dipole.pt"
    default_preset = "tiny"
    test_flags = {"--num-test": ("task_options.num_test", {"type": int, "help": "test clouds"})}

    def train_val_data(self) -> tuple[list[Data], list[Data]]:
        clouds = dipole_clouds(self.options.num_train + self.options.num_val, self.options.data_seed)
        return clouds[: self.options.num_train], clouds[self.options.num_train :]

    def test_data(self) -> list[Data]:
        return dipole_clouds(self.options.num_test, self.options.data_seed + 1)

    def protocol(self) -> str:
        return f"{self.options.num_train} train / {self.options.num_val} val clouds of seed {self.options.data_seed}"

    def test_protocol(self) -> str:
        return f"{self.options.num_test} clouds of seed {self.options.data_seed + 1}"

    def statistics(self, train: Sequence[Data]) -> dict[str, Any]:
        dipoles = torch.cat([cloud.dipole for cloud in train])  # [G, 3]
        return {"scale": float(dipoles.square().sum(-1).mean().sqrt())}  # the config's statistic: build_model passes it

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        return (model(batch) - batch.dipole).square().mean() / model.scale**2

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return {"mae": (model(batch) - batch.dipole).abs()}  # [G, 3]

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        with torch.no_grad():
            batch = Batch.from_data_list(list(data))
            error = (model(batch) - batch.dipole).abs()  # [G, 3]
        return {"dipole_mae": float(error.mean()), "zero_prediction_mae": float(batch.dipole.abs().mean()),
                "num_clouds": len(data)}
