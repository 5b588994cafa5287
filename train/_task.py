"""The task interface: what a zoo task supplies, while the shared stack (:func:`ponita.train.fit`) does the rest.

A task is one class, registered with :func:`register_task`, and a folder of YAML presets. It says where
its data comes from, which statistics its model needs, how to build the model, its loss and validation
metrics, and how to test. Trainer construction, EMA, optimiser and schedule, checkpoints, resume, early
stopping, logging, the learning curve, export and the command line are shared by every task.

See ``docs/adding_a_task.md`` for a walk through a complete task.
"""

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.models import build_config

if TYPE_CHECKING:
    from ._config import TrainConfig

ARCHITECTURE = "architecture"
"""The key of the ``model`` section that chooses among a task's :attr:`Task.models`."""
PLUGIN_GROUP = "ponita.tasks"
"""Entry-point group of task plug-ins: a package lists ``name = "module"`` under it to add its tasks."""
PLUGIN_VARIABLE = "PONITA_TASKS"
"""Environment variable of task plug-ins: module names or ``.py`` files, separated by ``os.pathsep``."""

_TASKS: dict[str, type["Task"]] = {}
_LOADED_PLUGINS: set[str] = set()


class Task:
    """Base class of zoo tasks; subclasses fill in the class attributes and the methods below.

    An instance holds the run's :class:`~ponita.train.TrainConfig` (``self.config``) and its task options
    (``self.options``, an instance of :attr:`options_class`).

    Class attributes:
        name: the task's name on the command line (``ponita train <name>``).
        options_class: dataclass of the task's options (the ``task_options`` section of a config); its
            ``__post_init__`` checks them.
        models: the zoo model classes the task trains, by architecture name; the first is the default, and
            with more than one the config's ``model.architecture`` chooses. The ``model`` section of a config
            holds the options of the chosen class's config (:func:`ponita.models.option_names`).
        default_model: options of the default model that differ from its config's defaults.
        moved_options: config keys of earlier ponita versions → where they are now (``"task_options.objective"``
            → ``"model.objective"``; or, for a key the task's :meth:`upgrade_config` converts itself, a few words
            saying what replaced it). :meth:`upgrade_config` moves them in stored configs, and an unknown-key
            error names the new place.
        metrics: validation metrics, name → label with unit (e.g. ``"val force MAE (meV/Å)"``); logged as
            ``val/<name>``, all "lower is better".
        monitor: the metric of :attr:`metrics` that selects the best epoch and drives early stopping.
        rotate_fields: vector fields of a sample that training augmentation rotates together (``()``: no
            augmentation).
        second_order_loss: the loss differentiates the model inside (a potential's forces), so training takes
            second derivatives; ``compile_step`` then needs :meth:`static_batch` (``torch.compile`` of the
            network alone cannot take them).
        model_file: file name of the exported model in the run folder.
        default_preset: the preset ``ponita train <name>`` uses without ``--preset`` (``None``: defaults).
        train_flags: command-line flags of ``ponita train <name>``: flag → (config key, argparse keywords).
        test_flags: command-line flags of ``ponita test`` for this task's checkpoints, in the same form.
    """

    name: ClassVar[str]
    options_class: ClassVar[type]
    models: ClassVar[dict[str, type[nn.Module]]]
    default_model: ClassVar[dict[str, Any]] = {}
    moved_options: ClassVar[dict[str, str]] = {}
    metrics: ClassVar[dict[str, str]]
    monitor: ClassVar[str]
    rotate_fields: ClassVar[tuple[str, ...]] = ()
    second_order_loss: ClassVar[bool] = False
    model_file: ClassVar[str] = "model.pt"
    default_preset: ClassVar[str | None] = None
    train_flags: ClassVar[dict[str, tuple[str, dict[str, Any]]]] = {}
    test_flags: ClassVar[dict[str, tuple[str, dict[str, Any]]]] = {}

    def __init__(self, config: "TrainConfig") -> None:
        self.config = config
        self.options = config.task_options

    @classmethod
    def upgrade_config(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        """A config stored by an earlier ponita (a checkpoint's, nested by section) with today's keys: each of
        :attr:`moved_options` moved to its new place. A task whose keys changed in other ways extends this."""
        values = {key: dict(value) if isinstance(value, Mapping) else value for key, value in stored.items()}
        for old, new in cls.moved_options.items():
            if " " in new or "=" in new:  # a description: the task upgrades that key itself
                continue
            old_section, _, old_name = old.rpartition(".")
            new_section, _, new_name = new.rpartition(".")
            source = values.get(old_section) if old_section else values
            if isinstance(source, dict) and old_name in source:
                value = source.pop(old_name)
                target = values.setdefault(new_section, {}) if new_section else values
                target.setdefault(new_name, value)
        return values

    @classmethod
    def presets_dir(cls) -> Path:
        """The folder of this task's presets: ``presets/<name>`` beside the module that defines the task."""
        return Path(sys.modules[cls.__module__].__file__).resolve().parent / "presets" / cls.name

    # Data.
    def train_val_data(self) -> tuple[Sequence[Data], Sequence[Data]]:
        """The training and validation samples."""
        raise NotImplementedError

    def test_data(self) -> Sequence[Data] | None:
        """The test samples, or ``None`` when the task has none."""
        raise NotImplementedError

    def protocol(self) -> str:
        """One line saying what the model is trained and validated on (stored in the exported model)."""
        raise NotImplementedError

    def test_protocol(self) -> str:
        """One line saying what :meth:`test_data` is."""
        raise NotImplementedError

    # Model.
    def statistics(self, train: Sequence[Data]) -> dict[str, Any]:
        """Statistics of the training data that the model needs (JSON-like; stored in the checkpoint)."""
        return {}

    @property
    def model_class(self) -> type[nn.Module]:
        """The zoo model class of this run: of :attr:`models`, the one the config's ``model.architecture`` names."""
        return self.models[self.config.model.get(ARCHITECTURE, next(iter(self.models)))]

    def build_model(self, statistics: dict[str, Any]) -> nn.Module:
        """A new zoo model (see :class:`ponita.models.ZooModel`) for ``self.config.model`` and ``statistics``.

        The default passes ``statistics`` as the model config's statistics (:meth:`make_model`); a task whose
        statistics are named otherwise, or which adds what its data fixes (e.g. the input size), overrides it."""
        return self.make_model(**statistics)

    def make_model(self, **statistics: Any) -> nn.Module:
        """A new :attr:`model_class` with the config's ``model`` options and the data's ``statistics`` (the
        statistic fields of its config, see :func:`ponita.models.statistic`)."""
        options = {name: value for name, value in self.config.model.items() if name != ARCHITECTURE}
        model_class = self.model_class
        return model_class.from_config(build_config(model_class.config_class, options, **statistics))

    def static_batch(self, model: nn.Module, batch: Batch) -> Batch | None:
        """``batch`` with everything whose shape depends on floating-point values (e.g. a radius graph
        built from the positions) replaced by an equivalent that does not, for compiled training steps
        (``compile_step``, :class:`~ponita.train.CompiledLoss`); ``None`` if the task cannot (the default,
        which makes ``compile_step`` an error)."""
        return None

    # Optimisation and evaluation.
    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """The scalar training loss of ``model`` on ``batch``."""
        raise NotImplementedError

    def validation_errors(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Per-element errors for every name in :attr:`metrics`; each metric is the mean over all elements."""
        raise NotImplementedError

    def test(self, model: nn.Module, data: Sequence[Data]) -> dict[str, Any]:
        """Test metrics of ``model`` (in eval mode, on its device) on ``data``; JSON-like, written to ``test.json``."""
        raise NotImplementedError

    def probe(self, model: nn.Module) -> dict[str, float]:
        """Measures of ``model``'s quality (the EMA weights, in eval mode, under ``no_grad``) that the run logs
        against training time every ``probe_every_minutes`` (``logs/probe.csv``, see
        :class:`~ponita.train.ProbeCallback`), e.g. a generator's molecule stability. The default has none."""
        return {}

    def finalize(self, model: nn.Module, train: Sequence[Data]) -> dict[str, Any] | None:
        """A last step on the trained (exported, EMA) model before it is saved for good and tested, e.g.
        refitting constants that the loss barely constrains. Changes ``model`` in place and returns what
        it did (stored in the model file's metadata as ``finalized``), or ``None`` for nothing (the default)."""
        return None

    def mean_errors(self, model: nn.Module, data: Sequence[Data]) -> dict[str, float]:
        """The mean of :meth:`validation_errors` over all of ``data`` (float64), for each metric.

        Runs in batches of the config's ``test_batch_size`` on the model's device, without gradients (a
        model that needs them, such as a potential's forces, enables them itself).
        """
        device = model_device(model)
        sums = {name: torch.zeros((), dtype=torch.float64, device=device) for name in self.metrics}
        counts = dict.fromkeys(self.metrics, 0)
        with torch.no_grad():
            for _, batch in data_batches(data, self.config.test_batch_size, device):
                for name, errors in self.validation_errors(model, batch).items():
                    sums[name] += errors.detach().double().sum()
                    counts[name] += errors.numel()
        return {name: float(sums[name] / counts[name]) for name in self.metrics}

    def write_artefacts(self, model: nn.Module, data: Sequence[Data], output: Path) -> dict[str, Path]:
        """Writes the task's output files (e.g. plots) of ``model`` on the test ``data`` into the folder ``output``.

        Returns:
            The files written, by name (the default writes none).
        """
        return {}

    @classmethod
    def format_metrics(cls, metrics: dict[str, Any]) -> str:
        """A human-readable table of :meth:`test`'s metrics (the command line prints it)."""
        return "\n".join(f"  {key:32s} {value}" for key, value in metrics.items())


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (a zoo model keeps them all on one)."""
    return next(model.parameters()).device


def data_batches(data: Sequence[Data], size: int, device: torch.device | str | None = None,
                 drop_last: bool = False) -> Iterator[tuple[int, Batch]]:
    """``data`` in order as batches of ``size`` samples, each with the index of its first sample.

    Args:
        data: the samples.
        size: samples per batch (the last batch may be smaller, unless ``drop_last``).
        device: where to move each batch (``None``: where the samples are).
        drop_last: leave out a last batch smaller than ``size`` (benchmarks time equal batches).
    """
    stop = len(data) - size + 1 if drop_last else len(data)
    for start in range(0, max(stop, 0), size):
        batch = Batch.from_data_list(list(data[start : start + size]))
        yield start, batch if device is None else batch.to(device)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: makes a :class:`Task` available to ``ponita train``, ``ponita test`` and :func:`load_config`.

    Raises:
        TypeError: if the class lacks a required attribute, its monitor is not one of its metrics, or the
            name is taken by another class.
    """
    for attribute in ("name", "options_class", "models", "metrics", "monitor"):
        if not hasattr(cls, attribute):
            raise TypeError(f"Task {cls.__name__} must define the class attribute {attribute!r}.")
    if not cls.models or not all(dataclasses.is_dataclass(getattr(model, "config_class", None)) for model in cls.models.values()):
        raise TypeError(f"Task {cls.name!r}: models must name zoo model classes (each with a dataclass config_class).")
    if cls.monitor not in cls.metrics:
        raise TypeError(f"Task {cls.__name__}: monitor {cls.monitor!r} is not one of its metrics {list(cls.metrics)}.")
    if _definition(_TASKS.get(cls.name, cls)) != _definition(cls):  # a reloaded module may re-register
        raise TypeError(f"Another task is already registered as {cls.name!r}.")
    _TASKS[cls.name] = cls
    return cls


def tasks() -> dict[str, type[Task]]:
    """The registered tasks by name, after importing the plug-ins (see :data:`PLUGIN_GROUP`, :data:`PLUGIN_VARIABLE`)."""
    _load_plugins()
    return dict(_TASKS)


def task_class(name: str) -> type[Task]:
    """The task registered as ``name``.

    Raises:
        ValueError: naming the registered tasks, if there is none of that name.
    """
    _load_plugins()
    if name not in _TASKS:
        raise ValueError(
            f"Unknown task {name!r}; choose one of {', '.join(sorted(_TASKS))} (a task of your own is found through "
            f"the {PLUGIN_VARIABLE} environment variable or the {PLUGIN_GROUP!r} entry-point group)."
        )
    return _TASKS[name]


def _definition(cls: type) -> tuple[str, str]:
    """Where a class is defined; the same after its module is imported again."""
    return cls.__module__, cls.__qualname__


def _load_plugins() -> None:
    """Imports the task modules of installed packages and of :data:`PLUGIN_VARIABLE`, each once."""
    sources = [entry.value for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP)]
    sources += [item for item in os.environ.get(PLUGIN_VARIABLE, "").split(os.pathsep) if item.strip()]
    for source in sources:
        if source in _LOADED_PLUGINS:
            continue
        _LOADED_PLUGINS.add(source)
        try:
            if source.endswith(".py"):
                path = Path(source)
                spec = importlib.util.spec_from_file_location(path.stem, path)
                if spec is None or not path.is_file():
                    raise FileNotFoundError(f"{path} does not exist")
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(source)
        except Exception as error:  # a broken plug-in is reported as such, whatever it raised
            _LOADED_PLUGINS.discard(source)
            raise ValueError(f"Cannot import the task plug-in {source!r}: {error}") from error
