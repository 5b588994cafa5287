"""Training, testing and simulating zoo models (PyTorch Lightning, ASE) and the ``ponita`` command.

One shared stack serves every task: a task (:class:`Task`, registered with :func:`register_task`) supplies
its data, statistics, model, loss, metrics and test; :func:`train` / :func:`fit` do the rest. Configs are
:class:`TrainConfig` objects loaded from per-task YAML presets (:func:`load_config`).
"""

from ._compiled_step import CompiledLoss
from ._config import TrainConfig, config_changes, config_fields, load_config, preset_names, save_config
from ._data_module import EpochSampler, RotatedFrames, TaskDataModule
from ._edm import EDMOptions, EDMTask
from ._evaluate import evaluate_potential
from ._learning_curve import plot_learning_curve
from ._lightning_module import TaskModule, build_optimizer, cosine_with_warmup
from ._machine import PrecisionChoice, choose_precision, cpu_bf16_speedup, machine_summary, reuse_freed_memory
from ._md17 import MD17Options, MD17Task, energy_force_loss
from ._muon import MuonAdam, muon_parameters
from ._probe import ProbeCallback, read_probes
from ._nbody import NBodyOptions, NBodyTask
from ._qm9 import QM9Options, QM9Task
from ._run import RunResult, export_model, fit, resume_config, task_from_checkpoint, test_checkpoint, train
from ._task import Task, data_batches, model_device, register_task, task_class, tasks
from .deploy import ENSEMBLES, MDResult, benchmark_setup, run_md, sample_molecules

__all__ = [
    "CompiledLoss",
    "EDMOptions",
    "EDMTask",
    "ENSEMBLES",
    "EpochSampler",
    "MD17Options",
    "MD17Task",
    "MDResult",
    "MuonAdam",
    "NBodyOptions",
    "NBodyTask",
    "PrecisionChoice",
    "ProbeCallback",
    "QM9Options",
    "QM9Task",
    "RotatedFrames",
    "RunResult",
    "Task",
    "TaskDataModule",
    "TaskModule",
    "TrainConfig",
    "benchmark_setup",
    "build_optimizer",
    "choose_precision",
    "config_changes",
    "config_fields",
    "cosine_with_warmup",
    "cpu_bf16_speedup",
    "data_batches",
    "energy_force_loss",
    "evaluate_potential",
    "export_model",
    "fit",
    "load_config",
    "machine_summary",
    "reuse_freed_memory",
    "model_device",
    "muon_parameters",
    "plot_learning_curve",
    "preset_names",
    "read_probes",
    "register_task",
    "resume_config",
    "run_md",
    "sample_molecules",
    "save_config",
    "task_class",
    "task_from_checkpoint",
    "tasks",
    "test_checkpoint",
    "train",
]
