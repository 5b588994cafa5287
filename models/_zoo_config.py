"""What every zoo model's config shares: statistics apart from options, and the nested network's options.

A zoo model owns one dataclass config (its ``config_class``) holding everything it is built from:

* **statistics** (fields made with :func:`statistic`): numbers that training takes from the data, such as a
  potential's reference energies or a regressor's target mean;
* **options**: everything else, which a user sets (in a training config, the YAML ``model:`` section);
* for a model around one :class:`ponita.Ponita` (a :class:`NetworkModelConfig`), the field ``network``:
  the network's options, except those the model derives itself (:meth:`NetworkModelConfig.derived_network_options`).

The config checks all of it in ``__post_init__``, so a bad value is rejected when the config is built; the
training stack builds one from example statistics (:func:`check_options`) before it reads any data.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from ponita import PonitaConfig

_STATISTIC = "ponita_statistic"


def statistic(example: Any) -> Any:
    """A config field that training fills in from the data (a statistic), not an option a user sets.

    Args:
        example: a stand-in value with which :func:`check_options` checks a config's options before any data
            is read (it is never used to build a model that is trained).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class ScaledConfig:
        ...     scale: float = statistic(example=1.0)
        ...     hidden_dim: int = 16
        >>> option_names(ScaledConfig), statistic_names(ScaledConfig)
        (['hidden_dim'], ['scale'])
    """
    return field(metadata={_STATISTIC: example})


def statistic_names(config_class: type) -> list[str]:
    """The statistics of a zoo model config (fields made with :func:`statistic`)."""
    return [f.name for f in dataclasses.fields(config_class) if _STATISTIC in f.metadata]


def _own_options(config_class: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_class) if _STATISTIC not in f.metadata and f.name != "network"]


def _example(config_class: type, options: Mapping[str, Any] | None = None) -> Any:
    """A config of ``config_class`` with example statistics and ``options`` (checked by its ``__post_init__``)."""
    examples = {f.name: f.metadata[_STATISTIC] for f in dataclasses.fields(config_class) if _STATISTIC in f.metadata}
    return build_config(config_class, options or {}, **examples)


def option_names(config_class: type) -> list[str]:
    """The options a user sets of a zoo model config, flat: its own fields that are not statistics, then the
    :class:`ponita.PonitaConfig` options of its ``network`` that the model does not derive itself."""
    own = _own_options(config_class)
    if not issubclass(config_class, NetworkModelConfig):
        return own
    derived = _example(config_class).derived_network_options()
    network = [f.name for f in dataclasses.fields(PonitaConfig) if f.name not in derived]
    clash = sorted(set(own) & set(network))
    if clash:  # a flat option name must say where it goes
        raise TypeError(f"{config_class.__name__} has field(s) {clash} that are also network options; rename them.")
    return own + network


def option_defaults(config_class: type) -> dict[str, Any]:
    """The default of every option of :func:`option_names` that has one."""
    defaults = {}
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if issubclass(config_class, NetworkModelConfig):
        fields |= {f.name: f for f in dataclasses.fields(PonitaConfig)}
    for name in option_names(config_class):
        item = fields[name]
        if item.default is not dataclasses.MISSING:
            defaults[name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            defaults[name] = item.default_factory()
    return defaults


def build_config(config_class: type, options: Mapping[str, Any], **statistics: Any) -> Any:
    """A zoo model config from flat ``options`` (see :func:`option_names`) and the data's ``statistics``.

    Raises:
        ValueError: naming the valid options, on an option the config does not have; and whatever the
            config's checks raise (a network option the model sets itself is a ``TypeError``).
    """
    own = set(_own_options(config_class))
    network_options = ({f.name for f in dataclasses.fields(PonitaConfig)}
                       if issubclass(config_class, NetworkModelConfig) else set())
    unknown = sorted(set(options) - own - network_options)
    if unknown:
        raise ValueError(f"{config_class.__name__} has no option(s) {unknown}; its options: "
                         f"{', '.join(option_names(config_class))}.")
    values = {name: value for name, value in options.items() if name in own}
    if network_options:
        values["network"] = {name: value for name, value in options.items() if name not in own}
    return config_class(**values, **statistics)


def check_options(config_class: type, options: Mapping[str, Any]) -> None:
    """Checks ``options`` of a zoo model config, with example statistics in place of the data's."""
    _example(config_class, options)


class NetworkModelConfig:
    """Base of the configs of zoo models built around one :class:`ponita.Ponita` (a dataclass with the field
    ``network``: the :class:`ponita.PonitaConfig` options the model does not derive itself).

    A subclass says in :meth:`derived_network_options` which network options follow from its own fields (input
    and output sizes, ``task_level``, ...). Its ``__post_init__`` (this one, or one that calls it) checks the
    network's options by building :meth:`network_config`.
    """

    network: dict[str, Any]

    def derived_network_options(self) -> dict[str, Any]:
        """The :class:`ponita.PonitaConfig` options the model sets itself, with their values for this config."""
        raise NotImplementedError

    def network_config(self) -> PonitaConfig:
        """The network's full config: the derived options and ``network``.

        Raises:
            TypeError: on an option the model derives itself, or one that :class:`ponita.PonitaConfig` lacks.
            ValueError: on a bad value (:class:`ponita.PonitaConfig`'s checks).
        """
        derived = self.derived_network_options()
        fixed = sorted(set(self.network) & set(derived))
        if fixed:
            raise TypeError(f"{type(self).__name__} sets the network option(s) {fixed} itself; remove them.")
        valid = {f.name for f in dataclasses.fields(PonitaConfig)}
        unknown = sorted(set(self.network) - valid)
        if unknown:
            raise TypeError(f"Unknown network option(s) {unknown}; valid: {', '.join(sorted(valid - set(derived)))}.")
        return PonitaConfig(**derived, **self.network)

    def __post_init__(self) -> None:
        self.network_config()
