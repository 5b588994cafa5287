"""The training configuration: shared fields, the network's options and the task's options, from YAML and ``key=value``.

A config has three parts, written as one YAML file::

    task: md17                # which task (see ``ponita train --list``)
    output: runs/quick        # shared fields: optimisation, schedule, EMA, hardware
    lr: 2.0e-3
    model:                    # the options of the task's zoo model: its config class, flat (network options too)
      space: R3xS2
      hidden_dim: 64
    task_options:             # the task's own dataclass (data, loss weights, test protocol)
      molecule: ethanol

The ``model`` section maps one-to-one onto the options of the zoo model's config class
(:func:`ponita.models.option_names`): its own fields, except the statistics that training takes from the
data, and the options of its :class:`ponita.Ponita` network that the model does not derive itself. A task
with several models (``nbody``: ``ponita`` or ``egnn``) adds ``model.architecture``; naming another
architecture than the layers before starts the section afresh.

A ``key=value`` override names a field as ``section.field`` (``model.hidden_dim=64``) or by its bare name
when only one part has it (``hidden_dim=64``). Unknown keys are errors that list the valid ones.
"""

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ponita import PonitaConfig
from ponita.models import check_options, option_defaults, option_names

from ._task import ARCHITECTURE, Task, task_class

PRECISIONS = ("auto", "32-true", "64-true", "bf16-mixed")
STRATEGIES = ("auto", "ddp", "ddp_spawn")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
LR_HORIZONS = ("epochs", "time")
OPTIMIZERS = ("adam", "adamw", "muon")
SECTIONS = ("model", "task_options")


@dataclass
class TrainConfig:
    """Everything a ``ponita train <task>`` run needs; the presets in ``train/presets/<task>/`` set it.

    Attributes:
        task: the task's name (a key of :func:`ponita.train.tasks`).
        output: run folder (``config.yaml``, checkpoints, logs, the model file, ``test.json``, plot).
        seed: seed of initialisation, shuffling and augmentation.
        batch_size: samples per batch (per process).
        optimizer: ``"adam"`` (weight decay as an L2 term, as the reference code), ``"adamw"``
            (decoupled weight decay) or ``"muon"`` (Muon on the hidden weight matrices, AdamW on the
            rest: :class:`ponita.train.MuonAdam`; on rMD17 it needs less than half of Adam's epochs).
        lr: peak learning rate.
        weight_decay: weight decay on the weight matrices (not on biases and scales).
        max_epochs: epochs; also the horizon of the cosine schedule.
        warmup_epochs: linear warm-up (may be fractional); the schedule is updated every step.
        max_time_minutes: stop after this wall time (Lightning ``max_time``); ``None``: no limit.
        lr_horizon: where the cosine schedule ends: ``"epochs"`` (at ``max_epochs``; reproducible) or
            ``"time"`` (at ``max_time_minutes`` of training, or at ``max_epochs`` if that comes first),
            so that a time budget always ends fully annealed whatever the machine, the load and the
            molecule size; it depends on measured time, so runs are not bit-reproducible.
        early_stopping_patience: stop after this many validations without a better monitored metric.
        ema_decay: decay of the weight EMA used for validation, testing and the exported model.
        gradient_clip: gradient-norm clipping value (``None``: off).
        compile_step: compile the training step, on one process. For tasks whose batches keep one
            structure (e.g. one molecule) the whole step (loss, forces, gradients) is traced into one graph
            and compiled with Inductor (:class:`ponita.train.CompiledLoss`); for batches of varying sizes
            (QM9 molecules) the model's network is compiled with dynamic shapes
            (:meth:`~ponita.train.TaskModule.compile_network`). The first step compiles (30–100 s on a
            2-core CPU), later ones run ≈ 1.5× faster or more; same gradients up to float round-off.
        probe_every_minutes: every this many minutes of training steps, log the task's quality probe
            (:meth:`Task.probe`, e.g. a generator's molecule stability) against training hours in
            ``logs/probe.csv`` and the learning curve; ``None``: no probes (tasks without a probe ignore it).
        init_from: a model file of this task (e.g. a run's exported model or ``pretrained/*.pt``), or a run's
            Lightning checkpoint (``.ckpt``, its EMA weights), whose network weights start the run instead of fresh
            ones; ``model`` may ask for more layers (which start as the identity) or a multiple of the channels
            (copied), and the run starts from the trained function (:meth:`ponita.Ponita.grow_from`). The optimiser,
            schedule and EMA start afresh; a resumed run ignores it (its checkpoint holds the weights).
        init_regrid: let ``init_from``'s weights start a network on another direction grid (``model``'s
            ``num_ori`` or ``grid``). The trained kernels then sample other directions, so the run starts from a
            *changed* function (docs/generation.md measures how far) and must train it back; ``false`` refuses
            another grid.
        precision: Lightning precision, ``"32-true"``, ``"64-true"`` or ``"bf16-mixed"``, or ``"auto"``:
            bf16 where it is fast (a CUDA device with bf16, a CPU whose bf16 GEMMs measure faster than fp32),
            fp32 elsewhere (:func:`ponita.train.choose_precision`; the run header and the model's protocol
            say what was chosen and why).
        accelerator: Lightning accelerator.
        devices: devices per node.
        num_nodes: nodes.
        strategy: ``"auto"``, ``"ddp"`` or ``"ddp_spawn"``.
        num_threads: torch CPU threads per process (``None``: torch's default).
        num_workers: DataLoader workers.
        check_val_every_n_epoch: validation interval in epochs.
        test_batch_size: samples per batch when testing.
        model: the options of the task's zoo model (:func:`ponita.models.option_names` of its config class;
            and ``architecture`` where the task has several models).
        task_options: the task's options, an instance of its ``options_class``.
    """

    task: str
    output: str = "runs/run"
    seed: int = 0
    # Optimisation.
    batch_size: int = 5
    optimizer: str = "adam"
    lr: float = 5e-4
    weight_decay: float = 0.0
    max_epochs: int = 100
    warmup_epochs: float = 0.0
    max_time_minutes: float | None = None
    lr_horizon: str = "epochs"
    early_stopping_patience: int | None = None
    ema_decay: float = 0.99
    gradient_clip: float | None = 0.5
    compile_step: bool = False
    probe_every_minutes: float | None = None
    init_from: str | None = None
    init_regrid: bool = False
    # Hardware.
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_threads: int | None = None
    num_workers: int = 0
    check_val_every_n_epoch: int = 1
    # Testing.
    test_batch_size: int = 50
    # The network and the task.
    model: dict[str, Any] = field(default_factory=dict)
    task_options: Any = None

    def __post_init__(self) -> None:
        choices = {"precision": PRECISIONS, "strategy": STRATEGIES, "accelerator": ACCELERATORS, "optimizer": OPTIMIZERS,
                   "lr_horizon": LR_HORIZONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}.")
        positive = ("batch_size", "max_epochs", "devices", "num_nodes", "test_batch_size", "check_val_every_n_epoch")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}.")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError(
                f"lr must be > 0 and weight_decay, warmup_epochs ≥ 0; got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, warmup_epochs={self.warmup_epochs}."
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}.")
        optional = ("max_time_minutes", "gradient_clip", "early_stopping_patience", "num_threads", "probe_every_minutes")
        for name in optional:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or null (off), got {value}.")
        if self.compile_step and (self.devices != 1 or self.num_nodes != 1):
            raise ValueError("compile_step runs on one process; set devices=1 and num_nodes=1, or compile_step=false.")
        if self.lr_horizon == "time" and self.max_time_minutes is None:
            raise ValueError("lr_horizon=time ends the schedule at max_time_minutes; set max_time_minutes too.")

    def as_dict(self) -> dict[str, Any]:
        """The config as nested plain values, as written to ``config.yaml`` and stored in checkpoints."""
        return dataclasses.asdict(self)


def shared_fields() -> list[str]:
    """The names of the shared fields of :class:`TrainConfig` (without ``task`` and the two sections)."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("task", *SECTIONS)]


def config_fields(task: str) -> list[str]:
    """Every key a config of ``task`` accepts, sections written as ``model.<field>``, ``task_options.<field>``."""
    cls = task_class(task)
    model = [f"model.{name}" for name in _model_fields(cls)]
    options = [f"task_options.{f.name}" for f in dataclasses.fields(cls.options_class)]
    return [*shared_fields(), *model, *options]


def preset_names(task: str) -> list[str]:
    """The presets of ``task`` (file names in its presets folder, without ``.yaml``)."""
    return sorted(path.stem for path in task_class(task).presets_dir().glob("*.yaml"))


def load_config(
    task: str,
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Builds the :class:`TrainConfig` of ``task`` from its defaults, ``base``, a preset, a YAML file, then overrides.

    Each layer replaces the fields it names (sections field by field). Values are parsed as YAML
    (``lr=1e-3``, ``radius=null``, ``multiple_readouts=false``) and converted to the field's type.

    Args:
        task: the task's name (see :func:`ponita.train.tasks`).
        preset: a preset of the task (see :func:`preset_names`), or ``None``.
        file: a YAML file of fields, nested or with bare field names.
        overrides: strings ``"key=value"``.
        base: fields to start from (e.g. the config stored in a checkpoint; a flat dict of a ponita
            0.1.0 run is understood too).

    Returns:
        The config.

    Raises:
        ValueError: on an unknown task or preset, an unknown or ambiguous key (the message lists the valid
            keys), a file of another task, an override without ``=``, or a value of the wrong type.

    Example:
        >>> load_config("md17", "quick", overrides=["lr=2e-3", "model.hidden_dim=32"]).model["hidden_dim"]
        32
    """
    cls = task_class(task)
    values: dict[str, Any] = {"task": task, "output": f"runs/{task}", "model": dict(cls.default_model), "task_options": {}}
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if base is not None:
        layers.append(("the stored config", cls.upgrade_config(base)))
    if preset is not None:
        path = cls.presets_dir() / f"{preset}.yaml"
        if not path.is_file():
            raise ValueError(f"Unknown preset {preset!r} of task {task!r}; choose one of {', '.join(preset_names(task))}.")
        layers.append((str(path), _read_yaml(path)))
    if file is not None:
        layers.append((str(file), _read_yaml(Path(file))))
    parsed: dict[str, Any] = {}
    for override in overrides:
        key, separator, text = override.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"Override {override!r} is not of the form key=value, e.g. lr=1e-3.")
        parsed[key.strip()] = yaml.safe_load(text) if text.strip() else None
    layers.append(("the overrides", parsed))
    for source, layer in layers:
        named = layer.get("task", task)
        if named != task:
            raise ValueError(f"{source} is a config of task {named!r}, not {task!r}.")
        resolved = _resolve(cls, layer)
        architecture = resolved.pop(("model", ARCHITECTURE), None)
        if architecture is not None and architecture != values["model"].get(ARCHITECTURE, next(iter(cls.models))):
            # Another model: the options so far were another config's. Start from the new one's defaults.
            values["model"] = dict(cls.default_model) if architecture == next(iter(cls.models)) else {}
        if architecture is not None:
            values["model"][ARCHITECTURE] = architecture
        for (section, name), value in resolved.items():
            (values[section] if section else values)[name] = value
    return _make_config(cls, values)


def config_changes(before: TrainConfig, after: TrainConfig) -> list[str]:
    """The fields in which ``after`` differs from ``before``, as ``"key: old → new"`` (sections as ``model.<field>``).

    ``ponita train --resume`` prints them: a resumed run keeps its stored config except where overridden.

    Example:
        >>> stored = load_config("md17", "quick")
        >>> config_changes(stored, load_config("md17", "quick", overrides=["lr=1e-3", "model.hidden_dim=32"]))
        ['lr: 0.002 → 0.001', 'model.hidden_dim: 64 → 32']
    """
    old, new = _flat(before.as_dict()), _flat(after.as_dict())
    return [f"{key}: {old.get(key)} → {new.get(key)}" for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections flattened to ``section.field`` keys."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Writes ``config`` as YAML that :func:`load_config` (``file=path``) reads back."""
    Path(path).write_text(yaml.safe_dump(config.as_dict(), sort_keys=False))


def _model_fields(cls: type[Task]) -> list[str]:
    """The keys of the ``model`` section of ``cls``'s configs: every model's options (and ``architecture``)."""
    names = [ARCHITECTURE] if len(cls.models) > 1 else []
    for model_class in cls.models.values():
        names += [name for name in option_names(model_class.config_class) if name not in names]
    return names


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ValueError(f"Config file {path} is a folder.")
    if not path.is_file():
        raise ValueError(f"Config file {path} does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"Config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of config fields, got {type(values).__name__}.")
    return values


def _resolve(cls: type[Task], layer: Mapping[str, Any]) -> dict[tuple[str | None, str], Any]:
    """Maps the keys of one layer (nested sections, ``section.field`` or bare names) to ``(section, field)``."""
    owners: dict[str | None, list[str]] = {
        None: shared_fields(),
        "model": _model_fields(cls),
        "task_options": [f.name for f in dataclasses.fields(cls.options_class)],
    }
    resolved: dict[tuple[str | None, str], Any] = {}
    unknown: list[str] = []
    for key, value in layer.items():
        if key == "task":
            continue
        if key in SECTIONS and isinstance(value, Mapping):
            items = [(key, name, item) for name, item in value.items()]
        elif "." in key:
            section, _, name = key.partition(".")
            items = [(section, name, value)]
        else:
            sections = [section for section, names in owners.items() if key in names]
            if len(sections) > 1:
                spelled = [key if section is None else f"{section}.{key}" for section in sections]
                raise ValueError(f"Config key {key!r} is ambiguous; write {' or '.join(spelled)}.")
            items = [(sections[0] if sections else "?", key, value)]
        for section, name, item in items:
            if section not in owners or name not in owners[section]:
                unknown.append(f"{section}.{name}" if section and section != "?" else name)
                continue
            resolved[(section, name)] = item
    if unknown:
        moved = [f"{key} is now {cls.moved_options[key]}" for key in unknown if key in cls.moved_options]
        derived = sorted(set(unknown) & {f"model.{f.name}" for f in dataclasses.fields(PonitaConfig)})
        hint = f" ({'; '.join(moved)})" if moved else (
            f" (the model of task {cls.name!r} sets {', '.join(derived)} itself)" if derived else "")
        raise ValueError(f"Unknown config key(s) {unknown}{hint}; valid keys: {', '.join(config_fields(cls.name))}.")
    return resolved


def _make_config(cls: type[Task], values: dict[str, Any]) -> TrainConfig:
    hints = typing.get_type_hints(TrainConfig)
    shared = {name: _coerce(name, value, hints[name]) for name, value in values.items() if name not in SECTIONS}
    model = dict(values["model"])
    architecture = model.pop(ARCHITECTURE, next(iter(cls.models)))
    if architecture not in cls.models:
        raise ValueError(f"Unknown model.architecture {architecture!r} of task {cls.name!r}; choose one of "
                         f"{', '.join(cls.models)}.")
    config_class = cls.models[architecture].config_class
    valid = option_names(config_class)
    unknown = sorted(set(model) - set(valid))
    if unknown:
        raise ValueError(f"model.{unknown[0]} is not an option of the {architecture} model of task {cls.name!r}; "
                         f"its options: {', '.join(valid)}.")
    model_hints = {**typing.get_type_hints(PonitaConfig), **typing.get_type_hints(config_class)}
    model = {name: _coerce(f"model.{name}", value, model_hints[name]) for name, value in model.items()}
    # Every option of the model, its defaults filled in, checked now rather than after loading the data.
    model = {**option_defaults(config_class), **model}
    check_options(config_class, model)
    if len(cls.models) > 1:
        model = {ARCHITECTURE: architecture, **model}
    option_hints = typing.get_type_hints(cls.options_class)
    options = cls.options_class(
        **{name: _coerce(f"task_options.{name}", value, option_hints[name]) for name, value in values["task_options"].items()}
    )
    return TrainConfig(**shared, model=model, task_options=options)


def _coerce(name: str, value: object, annotation: object) -> object:
    """Converts a YAML value to the field type ``annotation`` (``int``, ``float``, ``str``, ``bool`` or ``X | None``)."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    allowed = typing.get_args(annotation) if is_union else (annotation,)
    if annotation is typing.Any or typing.get_origin(annotation) in (dict, list):
        return value
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if type(None) in allowed:
            return None
        raise ValueError(f"{name} cannot be None.")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                continue
            if not math.isfinite(number):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            return number
        if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in allowed)
    raise ValueError(f"{name} must be {names}, got {value!r}.")
