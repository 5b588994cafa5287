r"""The ``qm9`` task: one QM9 property per model, as PONITA's QM9 regression benchmark.

Inputs are PyG's eleven per-atom features (no vectors); the model sums per-atom outputs and undoes the
standardisation by the training mean and population standard deviation; the loss is the L1 error of the
standardised target; the metric the MAE in the literature's unit. Split: ``RandomState(42)``
permutation of the 130,831 molecules in QM9 ``Index`` order, 110,000 train / 10,000 validation / 10,831
test (:func:`ponita.datasets.qm9_split`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.datasets import QM9_FEATURES, QM9_TARGETS, QM9Molecules, load_qm9, qm9_split, qm9_split_sizes
from ponita.models import PonitaRegressor

from ._task import Task, register_task


@dataclass
class QM9Options:
    """The ``task_options`` of ``qm9``.

    Attributes:
        target: one of :data:`ponita.datasets.QM9_TARGETS` (``mu``, ``alpha``, ``homo``, ``lumo``, ``gap``,
            ``r2``, ``zpve``, ``U0``, ``U``, ``H``, ``G``, ``Cv``).
        data_dir: folder of the processed QM9 cache (``None``: ``~/.cache/ponita/qm9``).
        num_train: use the first this many training molecules of the split (``None``: all 110,000).
        num_val: the first this many validation molecules (``None``: all 10,000).
        num_test: the first this many test molecules (``None``: all 10,831).
    """

    target: str = "mu"
    data_dir: str | None = None
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None

    def __post_init__(self) -> None:
        if self.target not in QM9_TARGETS:
            raise ValueError(f"Unknown QM9 target {self.target!r}; choose one of {', '.join(QM9_TARGETS)}.")
        check_subset_sizes(self)


def check_subset_sizes(options: object) -> None:
    """The ``num_train``, ``num_val``, ``num_test`` options of a QM9 task are ≥ 1 or ``None`` (all)."""
    for name in ("num_train", "num_val", "num_test"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be ≥ 1 or null (all), got {value}.")


class QM9Source:
    """The QM9 data of a task: the processed QM9 loaded once, and views of a published split's parts.

    A task that mixes it in sets :attr:`split_scheme` and has ``options.data_dir``.
    """

    split_scheme: str
    """The split of :func:`ponita.datasets.qm9_split`: ``"dimenet"`` or ``"edm"``."""

    def _molecules(self, part: str, limit: int | None, **view: Any) -> QM9Molecules:
        """The first ``limit`` molecules (``None``: all) of the split's ``part``; ``view``: :class:`QM9Molecules`'s options."""
        if getattr(self, "_qm9", None) is None:
            self._qm9 = load_qm9(self.options.data_dir)
        return QM9Molecules(self._qm9, qm9_split(len(self._qm9), self.split_scheme)[part][:limit], **view)

    def _part_size(self, part: str, limit: int | None) -> int:
        """How many molecules of ``part`` the task uses (for protocol lines; QM9 is not loaded)."""
        size = qm9_split_sizes(self.split_scheme)[part]
        return size if limit is None else min(limit, size)


@register_task
class QM9Task(QM9Source, Task):
    """QM9 property regression: one of the twelve targets from 3D geometry and atom features (PonitaRegressor)."""

    name = "qm9"
    options_class = QM9Options
    models = {"ponita": PonitaRegressor}
    moved_options = {"task_options.graph": "model.space=R3xS2-lifted with model.connect_lifted=all (the lifted preset)"}
    default_model = {"num_ori": 16, "hidden_dim": 256, "num_layers": 9, "basis_dim": 256, "multiple_readouts": False}
    metrics = {"mae": "val MAE"}
    monitor = "mae"
    rotate_fields = ("pos",)
    model_file = "model.pt"
    default_preset = "paper"
    train_flags = {
        "--target": ("task_options.target", {"choices": list(QM9_TARGETS), "help": "the property to regress"}),
        "--data-dir": ("task_options.data_dir", {"help": "folder of the processed QM9 cache"}),
    }
    test_flags = {
        "--data-dir": ("task_options.data_dir", {"help": "folder of the processed QM9 cache"}),
        "--num-test": ("task_options.num_test", {"type": int, "help": "the first N test molecules (default: all)"}),
    }

    @classmethod
    def upgrade_config(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Configs stored before 2026-12 chose PONITA's point cloud of bonds as ``task_options.graph: lifted-bonds``
        with ``model.space: R3xS2-points`` (or ``model.lift_bonds: true``); now ``model.space: R3xS2-lifted`` with
        ``model.connect_lifted: all``."""
        values = {key: dict(value) if isinstance(value, Mapping) else value for key, value in stored.items()}
        model = values.setdefault("model", {})
        lifted = values.get("task_options", {}).pop("graph", None) == "lifted-bonds"
        if model.pop("lift_bonds", False) or lifted:
            model |= {"space": "R3xS2-lifted", "connect_lifted": "all"}
        return super().upgrade_config(values)

    split_scheme = "dimenet"

    def train_val_data(self) -> tuple[QM9Molecules, QM9Molecules]:
        target = self.options.target
        return (self._molecules("train", self.options.num_train, target=target),
                self._molecules("valid", self.options.num_val, target=target))

    def test_data(self) -> QM9Molecules:
        return self._molecules("test", self.options.num_test, target=self.options.target)

    def _unit(self) -> str:
        return QM9_TARGETS[self.options.target][2]

    def protocol(self) -> str:
        num_train, num_val = self._part_size("train", self.options.num_train), self._part_size("valid", self.options.num_val)
        return (f"QM9 {self.options.target} ({self._unit()}), DimeNet/PONITA split (RandomState(42)): train on the "
                f"first {num_train:,} training molecules, validate on {num_val:,}")

    def test_protocol(self) -> str:
        return f"QM9 {self.options.target}: {self._part_size('test', self.options.num_test):,} test molecules of the same split"

    def statistics(self, train: Sequence[Data]) -> dict[str, Any]:
        y = torch.cat([molecule.y for molecule in train])  # [M]
        return {"mean": float(y.mean()), "std": float(y.std(correction=0))}

    def build_model(self, statistics: dict[str, Any]) -> PonitaRegressor:
        return self.make_model(**statistics, input_dim=len(QM9_FEATURES))

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        target = ((batch.y - model.mean) / model.std).to(model.network.embedding.weight.dtype)  # [G]
        return (model.standardised(batch) - target).abs().mean()

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return {"mae": (model(batch) - batch.y).abs()}  # [G]

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        return {"target": self.options.target, "unit": self._unit(), **self.mean_errors(model, data),
                "num_molecules": len(data)}

    @classmethod
    def format_metrics(cls, metrics: dict[str, Any]) -> str:
        return f"  test MAE of {metrics['target']}: {metrics['mae']:.5g} {metrics['unit']}  ({metrics['num_molecules']} molecules)"
