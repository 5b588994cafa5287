"""Training, testing and simulating ponita potentials (PyTorch Lightning, ASE) and the ``ponita`` command."""

from ._config import TrainConfig, config_fields, load_config, preset_names, save_config
from ._data_module import EpochSampler, PotentialDataModule, RotatedFrames
from ._evaluate import evaluate_potential
from ._learning_curve import plot_learning_curve
from ._lightning_module import PotentialTask, cosine_with_warmup, energy_force_loss
from ._molecular_dynamics import ENSEMBLES, MDResult, run_md
from ._run import RunResult, export_potential, md17_protocol, resume_config, test_potential, train_md17, train_potential

__all__ = [
    "ENSEMBLES",
    "EpochSampler",
    "MDResult",
    "PotentialDataModule",
    "PotentialTask",
    "RotatedFrames",
    "RunResult",
    "TrainConfig",
    "config_fields",
    "cosine_with_warmup",
    "energy_force_loss",
    "evaluate_potential",
    "export_potential",
    "load_config",
    "md17_protocol",
    "plot_learning_curve",
    "preset_names",
    "resume_config",
    "run_md",
    "save_config",
    "test_potential",
    "train_md17",
    "train_potential",
]
