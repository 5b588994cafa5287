r"""The ``qm9-edm`` task: an E(3)-equivariant diffusion model of QM9 molecules with a PONITA denoiser.

Data: QM9 with hydrogens, EDM's split (``np.random.seed(0)`` permutation; 100,000 train / 17,748 valid /
13,083 test; the test split equals EDM's processed file). The model is :class:`ponita.models.EDM`; the
training loss is EDM's noise-prediction error at a uniformly drawn step; validation is the same error
with fixed noise; the test samples molecules (sizes from the training histogram) and reports EDM's
metrics (:func:`ponita.datasets.molecule_metrics`) and the seconds per molecule, plus the noise-prediction
error and EDM's NLL (the variational bound, :meth:`ponita.models.EDM.nll`) of the test molecules.
"""

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.datasets import QM9Molecules, molecule_metrics, radius_of_gyration
from ponita.datasets._rdkit import require_rdkit
from ponita.models import DEFAULT_SPACING, EDM, default_sample_steps

from ._config import TrainConfig
from ._qm9 import QM9Source, check_subset_sizes
from ._task import Task, data_batches, model_device, register_task
from .deploy import sample_molecules

QM9_ATOMIC_NUMBERS = [1, 6, 7, 8, 9]
PROBE_DENOISING_MOLECULES = 256  # validation molecules of the probe's denoising error


@dataclass
class EDMOptions:
    r"""The ``task_options`` of ``qm9-edm``.

    The model's options (diffusion steps, noise schedule, objective) are in the ``model`` section: see
    :class:`ponita.models.EDMConfig`.

    Attributes:
        data_dir: folder of the processed QM9 cache.
        num_train, num_val, num_test: use the first this many molecules of each split (``None``: all).
        num_samples: molecules sampled by the test.
        sample_steps: sampler steps in the test (``None``: the objective's default, all :math:`T` for ``vp``; at
            most ``model.steps`` for ``vp``).
        sample_spacing: time spacing :math:`p` of fewer sampler steps (:func:`ponita.models.sampling_times`).
        probe_molecules: molecules sampled by each training-time probe (``probe_every_minutes``; fixed seed).
        probe_steps: sampler steps of the probe's molecules (at most ``model.steps`` for ``vp``).
        probe_noise: the noise level (Å) of the probe's denoising error (:meth:`ponita.models.EDM.denoising_error`).
    """

    data_dir: str | None = None
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None
    num_samples: int = 100
    sample_steps: int | None = None
    sample_spacing: float = DEFAULT_SPACING
    probe_molecules: int = 200
    probe_steps: int = 100
    probe_noise: float = 0.1

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.probe_molecules < 1:
            raise ValueError(f"num_samples and probe_molecules must be ≥ 1, got {self.num_samples}, "
                             f"{self.probe_molecules}.")
        if self.probe_steps < 1 or not 0 < self.probe_noise < math.inf:
            raise ValueError(f"probe_steps must be ≥ 1 and probe_noise a finite number > 0; got {self.probe_steps}, "
                             f"{self.probe_noise}.")
        if self.sample_steps is not None and self.sample_steps < 1:
            raise ValueError(f"sample_steps must be ≥ 1 or null (the objective's default), got {self.sample_steps}.")
        if not 0 < self.sample_spacing < math.inf:
            raise ValueError(f"sample_spacing must be a finite number > 0, got {self.sample_spacing}.")
        check_subset_sizes(self)


@register_task
class EDMTask(QM9Source, Task):
    """Molecule generation: EDM on QM9 with hydrogens, with a PONITA denoiser (sampled by `ponita sample`)."""

    name = "qm9-edm"
    split_scheme = "edm"
    options_class = EDMOptions
    models = {"ponita": EDM}
    default_model = {"num_ori": 16, "hidden_dim": 256, "num_layers": 9, "basis_dim": 256, "multiple_readouts": False}
    moved_options = {f"task_options.{name}": f"model.{name}" for name in
                     ("steps", "noise_precision", "condition_kernel", "objective", "sigma_data", "p_mean", "p_std")}
    metrics = {"loss": "val noise MSE"}
    monitor = "loss"
    rotate_fields = ("pos",)
    model_file = "generator.pt"
    default_preset = "paper"
    train_flags = {"--data-dir": ("task_options.data_dir", {"help": "folder of the processed QM9 cache"})}
    test_flags = {
        "--num-samples": ("task_options.num_samples", {"type": int, "help": "molecules to sample"}),
        "--steps": ("task_options.sample_steps", {"type": int, "help": "sampler steps (default: all)"}),
        "--spacing": ("task_options.sample_spacing", {"type": float, "help": "time spacing of fewer steps"}),
    }

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.objective, self.steps = config.model["objective"], config.model["steps"]
        if self.objective == "vp" and (self.options.sample_steps or 0) > self.steps:
            raise ValueError(f"task_options.sample_steps must lie in 1..model.steps={self.steps}, got "
                             f"{self.options.sample_steps}.")
        require_rdkit("The qm9-edm task (its test metrics)")  # before training, not after it

    def train_val_data(self) -> tuple[QM9Molecules, QM9Molecules]:
        return (self._molecules("train", self.options.num_train, atoms_only=True),
                self._molecules("valid", self.options.num_val, atoms_only=True))

    def test_data(self) -> QM9Molecules:
        return self._molecules("test", self.options.num_test, atoms_only=True)

    def protocol(self) -> str:
        return (f"QM9 with hydrogens, EDM split (seed 0): train on the first "
                f"{self._part_size('train', self.options.num_train):,} training molecules, validate on "
                f"{self._part_size('valid', self.options.num_val):,}")

    def test_protocol(self) -> str:
        steps = self.options.sample_steps or default_sample_steps(self.objective, self.steps)
        return (f"{self.options.num_samples} sampled molecules ({steps} sampler steps); noise error on "
                f"{self._part_size('test', self.options.num_test):,} test molecules")

    def statistics(self, train: Sequence[Data]) -> dict[str, Any]:
        sizes = train.sizes().tolist() if isinstance(train, QM9Molecules) else [int(m.z.shape[0]) for m in train]
        return {"size_counts": dict(sorted(Counter(sizes).items()))}

    def build_model(self, statistics: dict[str, Any]) -> EDM:
        return self.make_model(atomic_numbers=QM9_ATOMIC_NUMBERS, size_counts=statistics["size_counts"])

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.loss(batch)

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        generator = torch.Generator(batch.pos.device).manual_seed(0)  # the same noise every epoch
        return {"loss": model.loss(batch, generator).detach()[None]}

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(self.config.seed)
        start = time.perf_counter()
        samples = sample_molecules(model, self.options.num_samples, self.options.sample_steps,
                                   self.config.test_batch_size, generator, spacing=self.options.sample_spacing)
        seconds = (time.perf_counter() - start) / len(samples)
        default = default_sample_steps(self.objective, self.steps)
        nll = mean_nll(model, data, self.config) if self.objective == "vp" else None  # no bound for karras
        return {**molecule_metrics(samples), "seconds_per_molecule": seconds,
                "sample_steps": self.options.sample_steps or default,
                "test_noise_mse": self.mean_errors(model, data)["loss"], "test_nll": nll}

    def probe(self, model: nn.Module) -> dict[str, float]:
        """Stability and validity of ``probe_molecules`` molecules sampled in ``probe_steps`` steps (the same sizes
        and noise every time), their fraction with non-finite positions and mean radius of gyration (Å), and the
        denoising error at ``probe_noise`` Å on 256 validation molecules."""
        device = model_device(model)
        steps = self.options.probe_steps if self.objective == "karras" else min(self.options.probe_steps,
                                                                                        self.steps)
        samples = sample_molecules(model, self.options.probe_molecules, steps,
                                   self.config.test_batch_size, torch.Generator(device).manual_seed(self.config.seed),
                                   spacing=self.options.sample_spacing)
        finite = [molecule for molecule in samples if np.isfinite(molecule.pos).all()]
        metrics = molecule_metrics(finite) if finite else {name: 0.0 for name in ("molecule_stability",
                                                                                   "atom_stability", "validity")}
        radius = float(np.mean([radius_of_gyration(molecule) for molecule in finite])) if finite else math.nan
        if getattr(self, "_probe_batch", None) is None:
            molecules = self._molecules("valid", PROBE_DENOISING_MOLECULES, atoms_only=True)
            self._probe_batch = Batch.from_data_list(list(molecules))
        generator = torch.Generator(device).manual_seed(self.config.seed)
        error = model.denoising_error(self._probe_batch.to(device), self.options.probe_noise, generator)
        scale = len(finite) / len(samples)  # a molecule with non-finite positions counts as unstable and invalid
        return {"molecule_stability": scale * metrics["molecule_stability"],
                "atom_stability": scale * metrics["atom_stability"], "validity": scale * metrics["validity"],
                "denoising_error": float(error), "non_finite": 1.0 - scale, "radius_of_gyration": radius}

    @classmethod
    def format_metrics(cls, metrics: dict[str, Any]) -> str:
        names = ("atom_stability", "molecule_stability", "validity", "uniqueness")
        table = "  ".join(f"{name.replace('_', ' ')} {100 * metrics[name]:.1f} %" for name in names)
        return (f"  {metrics['num_molecules']} samples, {metrics['sample_steps']} steps: {table}\n"
                f"  {metrics['seconds_per_molecule']:.3f} s per molecule; test loss {metrics['test_noise_mse']:.4f}"
                + (f"; test NLL {metrics['test_nll']:.1f} nats per molecule" if metrics.get("test_nll") is not None else ""))


def mean_nll(model: EDM, data: Sequence[Data], config: TrainConfig) -> float:
    """EDM's NLL (one draw of the variational bound per molecule, seeded) averaged over ``data``."""
    device = model_device(model)
    generator = torch.Generator(device)
    total = 0.0
    for start, batch in data_batches(data, config.test_batch_size, device):
        total += float(model.nll(batch, generator.manual_seed(config.seed + start)).sum())
    return total / len(data)
