"""One checkpoint format for every zoo model: class, config, weights, task, statistics and code versions.

A zoo model follows the protocol of :class:`ZooModel`: a dataclass ``config`` holding its constructor
arguments (statistics included) and a ``from_config`` class method that rebuilds the architecture. The
:func:`register_model` decorator makes a class loadable by name, so :func:`load_model` needs nothing but
the file.
"""

import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

import ponita

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ponita-model/1"
"""The value of the ``"format"`` key of every checkpoint written by :func:`save_model`."""

_LEGACY_POTENTIAL_FORMAT = "ponita-potential/1"  # ponita 0.1.0; read and converted by _convert_legacy
_MODELS: dict[str, type[nn.Module]] = {}

ModelType = TypeVar("ModelType", bound=type[nn.Module])


@runtime_checkable
class ZooModel(Protocol):
    """What every model of the zoo provides (``ponita.Ponita`` itself follows the same convention).

    Attributes:
        config_class: the dataclass of the constructor arguments.
        config: this model's instance of ``config_class``; ``type(model).from_config(model.config)``
            builds the same architecture (with fresh weights).
        calibrated: whether :meth:`calibrate` has run (it is stored in the state dict).
    """

    config_class: ClassVar[type]
    config: Any

    @classmethod
    def from_config(cls, config: Any) -> "ZooModel": ...

    @property
    def calibrated(self) -> bool: ...

    def calibrate(self, data: Any) -> None: ...


def register_model(cls: ModelType) -> ModelType:
    """Class decorator: makes ``cls`` loadable by :func:`load_model` under its class name.

    Raises:
        TypeError: if ``cls`` lacks ``config_class`` or ``from_config``, or another class has its name.
    """
    if not dataclasses.is_dataclass(getattr(cls, "config_class", None)) or not hasattr(cls, "from_config"):
        raise TypeError(f"{cls.__name__} needs a dataclass config_class and a from_config classmethod.")
    if _definition(_MODELS.get(cls.__name__, cls)) != _definition(cls):  # a reloaded module may re-register
        raise TypeError(f"Another model class is already registered as {cls.__name__!r}.")
    _MODELS[cls.__name__] = cls
    return cls


def _definition(cls: type) -> tuple[str, str]:
    """Where a class is defined; the same after its module is imported again."""
    return cls.__module__, cls.__qualname__


def model_classes() -> dict[str, type[nn.Module]]:
    """The registered zoo model classes by name."""
    return dict(_MODELS)


def describe_model(class_name: str) -> str:
    """What a model class is, in words, for messages: its ``description`` (e.g. "an EDM molecule generator")."""
    cls = _MODELS.get(class_name)
    description = getattr(cls, "description", None)
    return f"{description} ({class_name})" if description else f"a {class_name}"


@dataclass
class Checkpoint:
    """The contents of a model checkpoint (see :func:`save_model`).

    Attributes:
        path: the file it was read from.
        model_class: name of the model class (a key of :func:`model_classes`).
        config: the model's config as a dict.
        state_dict: weights and buffers.
        dtype: ``"float32"``, ``"float64"`` or ``"bfloat16"``.
        task: the training task that produced it (e.g. ``"md17"``), or ``None``.
        metadata: JSON-like extras: the training config, the data protocol, statistics, epoch.
        versions: ponita and torch versions that wrote it.
    """

    path: Path
    model_class: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    dtype: str
    task: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def build(self, map_location: str | torch.device = "cpu") -> nn.Module:
        """The model with the saved weights, buffers and dtype, in eval mode on ``map_location``."""
        cls = _MODELS.get(self.model_class)
        if cls is None:
            raise ValueError(
                f"{self.path} holds a {self.model_class!r}, which is not a known ponita model "
                f"(known: {', '.join(sorted(_MODELS)) or 'none'}); import the module that defines it first."
            )
        saved = self.versions.get("ponita")
        if saved is not None and saved != ponita.__version__:
            warnings.warn(
                f"{self.path} was written by ponita {saved}; this is ponita {ponita.__version__}. Outputs may differ.",
                stacklevel=3,
            )
        try:
            model = cls.from_config(cls.config_class(**stored_config(cls.config_class, self.config)))
            if self.dtype == "float64":
                model.double()  # other dtypes: the weights are cast on loading; float64 buffers (grids) stay exact
            model.load_state_dict(self.state_dict)
        except (TypeError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0]
            raise ValueError(
                f"{self.path} does not fit this ponita's {self.model_class} (damaged, or written by another version): "
                f"{reason}"
            ) from None
        return model.to(map_location).eval()


def stored_config(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """A config as stored by an older ponita, in today's fields: the config class's ``upgrade_stored``
    class method, where it has one, converts it."""
    upgrade = getattr(config_class, "upgrade_stored", None)
    return upgrade(dict(values)) if upgrade is not None else dict(values)


def save_model(model: nn.Module, path: str | Path, task: str | None = None, **metadata: Any) -> Path:
    """Writes a zoo model to ``path`` as a self-describing checkpoint.

    The file is a ``torch.save`` dict with keys ``format`` (:data:`CHECKPOINT_FORMAT`), ``model_class``,
    ``config`` (``dataclasses.asdict(model.config)``), ``state_dict`` (on the CPU), ``dtype``, ``task``,
    ``versions`` (ponita and torch) and ``metadata`` (JSON-like values the caller adds, e.g. the
    training config, the data protocol and the dataset statistics). It loads with ``weights_only=True``.

    Args:
        model: a registered zoo model (see :func:`register_model`).
        path: the file to write; its folder is created.
        task: the name of the training task, so commands that take the file know what it is.
        **metadata: extra JSON-like values stored under ``"metadata"``.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: if ``model`` is not a registered zoo model.
    """
    name = type(model).__name__
    if name not in _MODELS or _definition(_MODELS[name]) != _definition(type(model)):
        raise TypeError(f"{name} is not a registered zoo model; decorate its class with @register_model.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model_class": name,
        "config": dataclasses.asdict(model.config),
        "state_dict": {key: tensor.detach().cpu() for key, tensor in model.state_dict().items()},
        "dtype": str(dtype).removeprefix("torch."),
        "task": task,
        "versions": {"ponita": str(ponita.__version__), "torch": str(torch.__version__)},
        "metadata": dict(metadata),
    }
    torch.save(checkpoint, path)
    logger.info("Saved the %s to %s", name, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads and checks a model checkpoint, also one written by ponita 0.1.0 (``ponita-potential/1``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is unreadable (truncated, not a torch file) or not a ponita model
            checkpoint; the message names the file and what to pass instead.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Checkpoint {path} is a folder, not a file.")
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # zip, pickle and EOF errors of torch.load all mean: not a readable checkpoint
        raise ValueError(f"{path} is not a readable checkpoint (truncated, or not written by torch.save).") from None
    found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
    if found == _LEGACY_POTENTIAL_FORMAT:
        raw = _convert_legacy(raw)
    elif found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a ponita model checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r}). "
            "Pass the model file written by `ponita train` (e.g. potential.pt) or save_model; Lightning's .ckpt "
            "files hold the training state and are used with `ponita train --resume`."
        )
    missing = [key for key in ("model_class", "config", "state_dict", "dtype") if key not in raw]
    if missing:
        raise ValueError(f"{path} is a damaged ponita checkpoint: it lacks {', '.join(missing)}.")
    return Checkpoint(path, raw["model_class"], raw["config"], raw["state_dict"], raw["dtype"], raw.get("task"),
                      dict(raw.get("metadata") or {}), dict(raw.get("versions") or {}))


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuilds the model saved by :func:`save_model`, in eval mode; warns if another ponita version wrote it.

    Example:
        >>> import tempfile
        >>> from ponita.models import PonitaPotential, load_model, save_model
        >>> model = PonitaPotential([1, 8], {1: -1.0, 8: -2.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     type(load_model(save_model(model, f"{folder}/potential.pt", task="md17"))).__name__
        'PonitaPotential'
    """
    return read_checkpoint(path, map_location).build(map_location)


def _convert_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``ponita-potential/1`` file (flat potential arguments, flat rMD17 training config) in today's layout."""
    config = dict(raw["config"])
    potential = {key: config.pop(key) for key in ("atomic_numbers", "reference_energies", "scale")}
    metadata = dict(raw.get("metadata") or {})
    return {**raw, "model_class": "PonitaPotential", "config": {**potential, "network": config},
            "task": "md17", "metadata": metadata}
