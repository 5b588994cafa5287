r"""The ``nbody`` task: forecast the charged 5-body system 1000 steps ahead (EGNN's "nbody_small" benchmark).

Each sample is one simulation at frame 30 (positions, velocities, charges); the target is the positions
at frame 40. The loss and the metric are the mean squared error over particles and coordinates
(published test MSE: EGNN 0.0070, SEGNN 0.0043, PONITA 0.0043). Training uses the first 3,000 of the
10,000 training simulations, validation and test all 2,000 of theirs
(:mod:`ponita.datasets` generates them exactly).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.datasets import NBODY_SPLITS, load_nbody, nbody_samples
from ponita.datasets._nbody import NBODY_INPUT_FRAME, NBODY_TARGET_FRAME
from ponita.models import EGNNNBody, PonitaNBody

from ._task import Task, model_device, register_task



@dataclass
class NBodyOptions:
    """The ``task_options`` of ``nbody``.

    Attributes:
        data_dir: folder of the generated arrays (``None``: ``~/.cache/ponita/nbody``; generated on first use).
        num_train: training simulations (the first of the 10,000; the benchmark uses 3,000).
        num_val: validation simulations (at most 2,000).
        num_test: test simulations (at most 2,000).
        plot_systems: test systems drawn in ``trajectories.png`` (0: no plot).
    """

    data_dir: str | None = None
    num_train: int = 3000
    num_val: int = 2000
    num_test: int = 2000
    plot_systems: int = 4

    def __post_init__(self) -> None:
        limits = {"num_train": NBODY_SPLITS["train"], "num_val": NBODY_SPLITS["valid"], "num_test": NBODY_SPLITS["test"]}
        for name, limit in limits.items():
            if not 1 <= getattr(self, name) <= limit:
                raise ValueError(f"{name} must lie in 1..{limit}, got {getattr(self, name)}.")
        if self.plot_systems < 0:
            raise ValueError(f"plot_systems must be ≥ 0, got {self.plot_systems}.")


@register_task
class NBodyTask(Task):
    """N-body forecasting: charged 5-body positions 1000 steps ahead (PonitaNBody or the EGNN baseline)."""

    name = "nbody"
    options_class = NBodyOptions
    models = {"ponita": PonitaNBody, "egnn": EGNNNBody}  # model.architecture=egnn: the EGNN baseline
    default_model = {"num_ori": 16, "basis_dim": 256, "layer_scale": 1e-6}  # PONITA's N-body network
    moved_options = {"task_options.architecture": "model.architecture", "task_options.egnn_hidden_dim": "model.hidden_dim",
                     "task_options.egnn_num_layers": "model.num_layers"}
    metrics = {"mse": "val MSE"}
    monitor = "mse"
    rotate_fields = ("pos", "vel", "target")
    model_file = "model.pt"
    default_preset = "paper"
    train_flags = {
        "--architecture": ("model.architecture", {"choices": list(models), "help": "ponita or the EGNN baseline"}),
        "--data-dir": ("task_options.data_dir", {"help": "folder of the generated N-body arrays"}),
    }
    test_flags = {
        "--data-dir": ("task_options.data_dir", {"help": "folder of the generated N-body arrays"}),
        "--num-test": ("task_options.num_test", {"type": int, "help": "test simulations (default 2000)"}),
    }

    def train_val_data(self) -> tuple[list[Data], list[Data]]:
        train = load_nbody("train", self.options.data_dir, self.options.num_train)
        val = load_nbody("valid", self.options.data_dir, self.options.num_val)
        return nbody_samples(train), nbody_samples(val)

    def test_data(self) -> list[Data]:
        return nbody_samples(load_nbody("test", self.options.data_dir, self.options.num_test))

    def protocol(self) -> str:
        return (
            f"charged 5-body (nbody_small, seed 43): frame {NBODY_INPUT_FRAME} → {NBODY_TARGET_FRAME} of the first "
            f"{self.options.num_train} training simulations, validated on {self.options.num_val}"
        )

    def test_protocol(self) -> str:
        return f"charged 5-body (nbody_small, seed 43): the first {self.options.num_test} test simulations"

    @classmethod
    def upgrade_config(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Configs of earlier ponita (before 2026-12) chose EGNN as ``task_options.architecture: egnn`` with
        ``egnn_hidden_dim`` and ``egnn_num_layers``; now ``model.architecture: egnn`` with its ``hidden_dim`` and
        ``num_layers``."""
        values = {key: dict(value) if isinstance(value, Mapping) else value for key, value in stored.items()}
        options = values.get("task_options", {})
        egnn = {name: options.pop(f"egnn_{name}") for name in ("hidden_dim", "num_layers") if f"egnn_{name}" in options}
        if options.pop("architecture", None) == "egnn":
            values["model"] = {"architecture": "egnn", **egnn}
        return values

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        return (model(batch) - batch.target).square().mean()

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return {"mse": (model(batch) - batch.target).square()}  # [N, 3]

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        return {**self.mean_errors(model, data), "num_simulations": len(data)}

    def write_artefacts(self, model: nn.Module, data: Sequence[Data], output: Path) -> dict[str, Path]:
        if self.options.plot_systems == 0:
            return {}
        from ._trajectory_plot import plot_nbody_predictions

        simulations = load_nbody("test", self.options.data_dir, self.options.plot_systems)
        with torch.no_grad():
            batch = Batch.from_data_list(list(data[: self.options.plot_systems])).to(model_device(model))
            predicted = model(batch).cpu().view(-1, 5, 3)  # [S, 5, 3]
        path = plot_nbody_predictions(simulations, predicted, output / "trajectories.png")
        return {"trajectories": path}

    @classmethod
    def format_metrics(cls, metrics: dict[str, Any]) -> str:
        return (f"  test MSE of the positions at frame {NBODY_TARGET_FRAME}: {metrics['mse']:.6f}  "
                f"({metrics['num_simulations']} simulations; published: EGNN 0.0070, SEGNN 0.0043, PONITA 0.0043)")
