"""The training configuration: one dataclass, filled from YAML presets, YAML files and ``key=value`` overrides."""

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from ponita import SPACES
from ponita.datasets import RMD17_MOLECULES

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRECISIONS = ("32-true", "64-true", "bf16-mixed")
STRATEGIES = ("auto", "ddp", "ddp_spawn")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


@dataclass
class TrainConfig:
    """Everything a ``ponita train md17`` run needs; the presets in ``train/presets`` set these fields.

    Attributes:
        molecule: rMD17 molecule.
        split: official rMD17 split, 1 to 5 (train on 950 frames of train_k, validate on 50, test on test_k).
        data_dir: folder with the rMD17 files; ``None`` uses the bundled ethanol split 1.
        num_val: validation frames taken from the 1000 training frames.
        output: run folder (checkpoints, logs, plot, potential.pt, test.json).
        space: Ponita space.
        hidden_dim: channels.
        num_layers: ConvNeXt layers.
        num_ori: orientation grid size.
        basis_dim: kernel basis functions (``None``: ``hidden_dim``).
        degree: polynomial degree of the attribute embedding.
        widening_factor: ConvNeXt MLP widening.
        layer_scale: initial layer scale (``None``: off).
        multiple_readouts: average readouts of every layer.
        radius: cutoff radius in Å (``None``: fully connected).
        batch_size: molecules per batch (per process).
        lr: peak learning rate of Adam.
        weight_decay: weight decay on the weight matrices (not on biases).
        lambda_forces: :math:`\\lambda_F`; the energy term of the loss is divided by it.
        max_epochs: epochs; also the horizon of the cosine schedule.
        warmup_epochs: linear warm-up (may be fractional); the schedule is updated every step.
        max_time_minutes: stop after this wall time (Lightning ``max_time``); ``None``: no limit.
        early_stopping_patience: stop after this many validations without a better val force MAE.
        ema_decay: decay of the weight EMA used for validation, testing and the exported potential.
        gradient_clip: gradient-norm clipping value.
        seed: seed of initialisation, shuffling and augmentation.
        precision: Lightning precision, ``"32-true"``, ``"64-true"`` or ``"bf16-mixed"``.
        accelerator: Lightning accelerator.
        devices: devices per node.
        num_nodes: nodes.
        strategy: ``"auto"``, ``"ddp"`` or ``"ddp_spawn"``.
        num_threads: torch CPU threads per process (``None``: torch's default).
        num_workers: DataLoader workers.
        check_val_every_n_epoch: validation interval in epochs.
        test_rotations: after training, also report test MAEs averaged over this many random rotations (0: off).
        test_batch_size: molecules per batch when testing.
    """

    # Data: rMD17 protocol, 950 train / 50 val frames of train_k, test on the 1000 frames of test_k.
    molecule: str = "ethanol"
    split: int = 1
    data_dir: str | None = None
    num_val: int = 50
    output: str = "runs/md17"
    # Model: the arguments of ponita.Ponita (paper values for rMD17).
    space: str = "R3xS2"
    hidden_dim: int = 128
    num_layers: int = 5
    num_ori: int = 20
    basis_dim: int | None = 256
    degree: int = 3
    widening_factor: int = 4
    layer_scale: float | None = None
    multiple_readouts: bool = True
    radius: float | None = None
    # Optimisation (paper: Adam 5e-4, batch 5, 5000 epochs, 100 warm-up, EMA 0.99, clip 0.5, λ_F 500).
    batch_size: int = 5
    lr: float = 5e-4
    weight_decay: float = 1e-16
    lambda_forces: float = 500.0
    max_epochs: int = 5000
    warmup_epochs: float = 100.0
    max_time_minutes: float | None = None
    early_stopping_patience: int | None = None
    ema_decay: float = 0.99
    gradient_clip: float = 0.5
    seed: int = 0
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
    test_rotations: int = 0
    test_batch_size: int = 50

    def __post_init__(self) -> None:
        choices = {
            "molecule": RMD17_MOLECULES,
            "space": SPACES,
            "precision": PRECISIONS,
            "strategy": STRATEGIES,
            "accelerator": ACCELERATORS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}.")
        positive = ("batch_size", "max_epochs", "devices", "num_nodes", "hidden_dim", "num_layers", "test_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}.")

    def model_options(self) -> dict[str, object]:
        """The :class:`ponita.Ponita` arguments of this config, for :class:`ponita.models.PonitaPotential`."""
        names = ("space", "hidden_dim", "num_layers", "num_ori", "basis_dim", "degree", "widening_factor",
                 "layer_scale", "multiple_readouts", "radius")
        return {name: getattr(self, name) for name in names}


def config_fields() -> list[str]:
    """The names of the fields of :class:`TrainConfig`, in definition order."""
    return [field.name for field in dataclasses.fields(TrainConfig)]


def preset_names() -> list[str]:
    """The presets shipped in ``train/presets`` (file names without ``.yaml``)."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def load_config(
    preset: str | None = "quick",
    file: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    base: dict[str, object] | None = None,
) -> TrainConfig:
    """Builds a :class:`TrainConfig` from a preset, then a YAML file, then ``key=value`` overrides.

    Each layer replaces the fields it names. Values are parsed as YAML (``lr=1e-3``, ``radius=null``,
    ``multiple_readouts=false``) and converted to the field's type.

    Args:
        preset: name of a preset in ``train/presets`` (see :func:`preset_names`), or ``None`` for the
            dataclass defaults.
        file: a YAML file of fields.
        overrides: strings ``"key=value"``.
        base: fields to start from instead of a preset (e.g. the config stored in a checkpoint).

    Returns:
        The config.

    Raises:
        ValueError: on an unknown preset, an unknown key (the message lists the valid keys), an override
            without ``=``, or a value of the wrong type.

    Example:
        >>> load_config("quick", overrides=["lr=2e-3"]).lr
        0.002
    """
    values: dict[str, object] = dict(base or {})
    if preset is not None:
        path = PRESETS_DIR / f"{preset}.yaml"
        if not path.is_file():
            raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(preset_names())}.")
        values.update(_read_yaml(path))
    if file is not None:
        values.update(_read_yaml(Path(file)))
    for override in overrides:
        key, separator, text = override.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"Override {override!r} is not of the form key=value, e.g. lr=1e-3.")
        values[key.strip()] = yaml.safe_load(text) if text.strip() else None
    return _make_config(values)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Writes ``config`` as YAML that :func:`load_config` (``file=path``) reads back."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))


def _read_yaml(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise ValueError(f"Config file {path} does not exist.")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of config fields, got {type(values).__name__}.")
    return values


def _make_config(values: dict[str, object]) -> TrainConfig:
    valid = config_fields()
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"Unknown config key(s) {unknown}; valid keys: {', '.join(valid)}.")
    hints = typing.get_type_hints(TrainConfig)
    return TrainConfig(**{name: _coerce(name, value, hints[name]) for name, value in values.items()})


def _coerce(name: str, value: object, annotation: object) -> object:
    """Converts a YAML value to the field type ``annotation`` (``int``, ``float``, ``str``, ``bool`` or ``X | None``)."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    allowed = typing.get_args(annotation) if is_union else (annotation,)
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
                return float(value)
            except ValueError:
                continue
        if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in allowed)
    raise ValueError(f"{name} must be {names}, got {value!r}.")
