"""The model zoo: interatomic potentials built on :class:`ponita.Ponita` with an ASE calculator, N-body
forecasters (PONITA and the EGNN baseline), molecular property regression, an EDM molecule generator; one config
dataclass per model (statistics apart from options: :func:`statistic`, :func:`option_names`) and one checkpoint
format (:func:`save_model` / :func:`load_model`) for every zoo model."""

from ._calculator import PonitaCalculator
from ._checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    ZooModel,
    describe_model,
    load_model,
    model_classes,
    read_checkpoint,
    register_model,
    save_model,
    stored_config,
)
from ._compiled_forces import compile_energy_and_forces
from ._edm import (
    DEFAULT_SPACING,
    Autoguidance,
    EDM,
    KARRAS_CHURN,
    KARRAS_DEFAULT_STEPS,
    KARRAS_SIGMA_MAX,
    OBJECTIVES,
    SAMPLERS,
    EDMConfig,
    default_sample_steps,
    karras_loss_weight,
    karras_preconditioning,
    karras_sigmas,
    sampling_times,
)
from ._egnn import EGNNConfig, EGNNLayer, EGNNNBody
from ._energy_model import PonitaPotential, PotentialConfig, compute_forces, load_potential
from ._nbody import NBodyConfig, PonitaNBody
from ._noise_schedule import NoiseSchedule, polynomial_alphas2
from ._network_model import NetworkModel
from ._property import PonitaRegressor, RegressorConfig
from ._zoo_config import (
    NetworkModelConfig,
    build_config,
    check_options,
    option_defaults,
    option_names,
    statistic,
    statistic_names,
)

__all__ = [
    "Autoguidance",
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "DEFAULT_SPACING",
    "EDM",
    "EDMConfig",
    "EGNNConfig",
    "EGNNLayer",
    "EGNNNBody",
    "KARRAS_CHURN",
    "KARRAS_DEFAULT_STEPS",
    "KARRAS_SIGMA_MAX",
    "NBodyConfig",
    "NetworkModel",
    "NetworkModelConfig",
    "NoiseSchedule",
    "OBJECTIVES",
    "PonitaCalculator",
    "PonitaNBody",
    "PonitaPotential",
    "PonitaRegressor",
    "PotentialConfig",
    "RegressorConfig",
    "SAMPLERS",
    "ZooModel",
    "build_config",
    "check_options",
    "compile_energy_and_forces",
    "compute_forces",
    "default_sample_steps",
    "describe_model",
    "karras_loss_weight",
    "karras_preconditioning",
    "karras_sigmas",
    "load_model",
    "load_potential",
    "model_classes",
    "option_defaults",
    "option_names",
    "polynomial_alphas2",
    "read_checkpoint",
    "register_model",
    "sampling_times",
    "save_model",
    "statistic",
    "statistic_names",
    "stored_config",
]
