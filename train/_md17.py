r"""The ``md17`` task: interatomic potentials trained on energies and forces of rMD17.

Follows the rMD17 training of Bekkers et al. (ICLR 2024): a :class:`ponita.models.PonitaPotential`,
loss on energies and forces scaled by the RMS of the training forces, random rotation of every training
frame. Protocol: train on 950 frames of ``train_k`` (seeded split), validate on the other 50, test on
the 1000 frames of ``test_k``.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.datasets import RMD17_MOLECULES, fit_atomic_reference_energies, force_rms, load_rmd17, train_val_split
from ponita.models import PonitaPotential

from ._evaluate import evaluate_potential
from ._task import Task, data_batches, model_device, register_task

RMD17_FRAMES_PER_SPLIT = 1000


def energy_force_loss(energy: Tensor, forces: Tensor, batch: Batch, scale: Tensor, lambda_forces: float) -> Tensor:
    r"""The rMD17 loss of PONITA on energies and forces in units of the force RMS :math:`s`.

    .. math::
        L = \frac{1}{\lambda_F} \frac{1}{G} \sum_g \Big(\frac{\hat E_g - E_g}{s}\Big)^2
          + \frac{1}{N} \sum_i \frac{1}{3} \sum_{\alpha} \Big(\frac{\hat F_{i\alpha} - F_{i\alpha}}{s}\Big)^2

    Args:
        energy: predicted energies ``[G]`` (meV).
        forces: predicted forces ``[N, 3]`` (meV/Å).
        batch: targets ``batch.energy`` ``[G]`` and ``batch.forces`` ``[N, 3]``.
        scale: :math:`s` (meV/Å), a scalar tensor.
        lambda_forces: :math:`\lambda_F` (500 in the paper).

    Returns:
        The scalar loss.
    """
    energy_error = (energy - batch.energy.to(energy.dtype)) / scale  # [G]
    force_error = (forces - batch.forces.to(forces.dtype)) / scale  # [N, 3]
    return energy_error.square().mean() / lambda_forces + force_error.square().mean()


@dataclass
class MD17Options:
    """The ``task_options`` of ``md17``.

    Attributes:
        molecule: rMD17 molecule (required: the presets set it, ``--molecule`` changes it).
        split: official rMD17 split, 1 to 5 (train on 950 frames of train_k, validate on 50, test on test_k).
        data_dir: folder with the rMD17 files; ``None`` uses the bundled ethanol split 1.
        num_val: validation frames taken from the 1000 training frames.
        lambda_forces: :math:`\\lambda_F`; the energy term of the loss is divided by it.
        test_rotations: also report test MAEs averaged over this many random rotations (0: off).
    """

    molecule: str | None = None
    split: int = 1
    data_dir: str | None = None
    num_val: int = 50
    lambda_forces: float = 500.0
    test_rotations: int = 0

    def __post_init__(self) -> None:
        if self.molecule is not None and self.molecule not in RMD17_MOLECULES:
            raise ValueError(f"Unknown molecule {self.molecule!r}; choose one of {', '.join(RMD17_MOLECULES)}.")
        if not 1 <= self.split <= 5:
            raise ValueError(f"split must be one of the official rMD17 splits 1-5, got {self.split}.")
        if not 1 <= self.num_val < RMD17_FRAMES_PER_SPLIT:
            raise ValueError(f"num_val must lie in 1..{RMD17_FRAMES_PER_SPLIT - 1}, got {self.num_val}.")
        if not self.lambda_forces > 0:
            raise ValueError(f"lambda_forces must be > 0, got {self.lambda_forces}.")
        if self.test_rotations < 0:
            raise ValueError(f"test_rotations (--rotations) must be ≥ 0, got {self.test_rotations}.")


@register_task
class MD17Task(Task):
    """Interatomic potentials: energies and forces of rMD17 molecules (a PonitaPotential)."""

    name = "md17"
    second_order_loss = True  # forces
    options_class = MD17Options
    models = {"ponita": PonitaPotential}
    default_model = {"num_ori": 20, "basis_dim": 256}  # the paper's rMD17 network (the rest: Ponita's defaults)
    metrics = {"forces_mae": "val force MAE (meV/Å)", "energy_mae": "val energy MAE (meV)"}
    monitor = "forces_mae"
    rotate_fields = ("pos", "forces")
    model_file = "potential.pt"
    default_preset = "paper"
    _static_edges: tuple[nn.Module, tuple[int, ...], Tensor | None] | None = None  # static_batch's last graph
    train_flags = {
        "--molecule": ("task_options.molecule", {"choices": RMD17_MOLECULES, "help": "rMD17 molecule (default: the preset's)"}),
        "--split": ("task_options.split", {"type": int, "help": "rMD17 split 1-5"}),
        "--data-dir": ("task_options.data_dir", {"help": "folder with the rMD17 files (default: bundled ethanol split 1)"}),
    }
    test_flags = {
        "--molecule": ("task_options.molecule", {"choices": RMD17_MOLECULES, "help": "default: the training molecule"}),
        "--split": ("task_options.split", {"type": int, "help": "test on test_K (default: the training split)"}),
        "--data-dir": ("task_options.data_dir", {"help": "folder with the rMD17 files (default: as in training)"}),
        "--rotations": ("task_options.test_rotations", {"type": int, "help": "also average over N random rotations"}),
    }

    def _molecule(self) -> str:
        if self.options.molecule is None:
            raise ValueError("No rMD17 molecule given; pass --molecule or task_options.molecule=<name>.")
        return self.options.molecule

    def train_val_data(self) -> tuple[list[Data], list[Data]]:
        frames = load_rmd17(self._molecule(), "train", split=self.options.split, data_dir=self.options.data_dir)
        return train_val_split(frames, num_val=self.options.num_val)

    def test_data(self) -> list[Data]:
        return load_rmd17(self._molecule(), "test", split=self.options.split, data_dir=self.options.data_dir)

    def protocol(self) -> str:
        split, num_val = self.options.split, self.options.num_val
        return (
            f"rMD17 {self._molecule()}, split {split:02d}: train on {RMD17_FRAMES_PER_SPLIT - num_val} frames of "
            f"train_{split:02d} (seeded train_val_split), validate on the other {num_val}"
        )

    def test_protocol(self) -> str:
        return f"rMD17 {self._molecule()}: the {RMD17_FRAMES_PER_SPLIT} frames of test_{self.options.split:02d}"

    def statistics(self, train: Sequence[Data]) -> dict[str, Any]:
        return {"reference_energies": fit_atomic_reference_energies(train), "force_rms": force_rms(train)}

    def build_model(self, statistics: dict[str, Any]) -> PonitaPotential:
        energies = statistics["reference_energies"]
        return self.make_model(atomic_numbers=sorted(energies), reference_energies=energies, scale=statistics["force_rms"])

    def static_batch(self, model: nn.Module, batch: Batch) -> Batch | None:
        """``batch`` with the fully connected graph of each molecule (:meth:`ponita.Ponita.static_edges`),
        which gives the same energies and forces as the network's radius graph."""
        sizes = tuple(batch.ptr.diff().tolist())
        cached = self._static_edges
        if cached is None or cached[0] is not model or cached[1] != sizes:
            self._static_edges = cached = (model, sizes, model.network.static_edges(list(sizes)))
        edges = cached[2]
        if edges is None:
            return None
        batch = copy.copy(batch)  # shares the tensors
        batch.edge_index = edges  # [2, E]
        return batch

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        energy, forces = model(batch)  # [G], [N, 3]
        return energy_force_loss(energy, forces, batch, model.scale, self.options.lambda_forces)

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        energy, forces = model(batch)  # [G], [N, 3]
        return {
            "forces_mae": (forces - batch.forces.to(forces.dtype)).abs(),  # [N, 3]
            "energy_mae": (energy - batch.energy.to(energy.dtype)).abs(),  # [G]
        }

    def finalize(self, model: nn.Module, train: Sequence[Data]) -> dict[str, Any]:
        r"""Refits the reference energies to the trained model's residuals on the training frames.

        With the paper's loss the energy term weighs 1/500 of the force term, and forces do not see a
        constant: the trained model's energies drift by a near-constant offset (aspirin after 10 minutes:
        −26 to −79 meV, as large as the rest of the error). A least-squares fit of :math:`E_0` to
        :math:`E - \hat E` on the training frames (:func:`ponita.datasets.fit_atomic_reference_energies`)
        removes it; forces are unchanged.
        """
        device = model_device(model)
        residuals = []
        with torch.no_grad():
            for _, batch in data_batches(train, self.config.test_batch_size, device):
                energy = model.energy(batch, batch.pos.to(model.network.embedding.weight.dtype))  # [G]
                residuals.append((batch.energy.to(torch.float64) - energy).cpu())
        residuals = torch.cat(residuals)  # [F]
        frames = [Data(z=frame.z, energy=residual.view(1)) for frame, residual in zip(train, residuals)]
        shift = fit_atomic_reference_energies(frames)
        model.shift_reference_energies_(shift)
        return {"reference_energy_shift_meV": shift, "mean_train_energy_residual_meV": float(residuals.mean())}

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        return evaluate_potential(model, data, self.config.test_batch_size, self.options.test_rotations, self.config.seed)

    @classmethod
    def format_metrics(cls, metrics: dict[str, Any]) -> str:
        lines = [f"  {'':24s} {'energy MAE (meV)':>18s} {'force MAE (meV/Å)':>18s}",
                 f"  {'single pass':24s} {metrics['energy_mae_meV']:18.3f} {metrics['forces_mae_meV_per_A']:18.3f}"]
        if "rotations" in metrics:
            label = f"{metrics['rotations']} rotations averaged"
            lines.append(f"  {label:24s} {metrics['rotation_averaged_energy_mae_meV']:18.3f} "
                         f"{metrics['rotation_averaged_forces_mae_meV_per_A']:18.3f}")
        return "\n".join(lines)
