"""The shared part of zoo models built around one :class:`ponita.Ponita`: construction, calibration, its flag."""

from typing import Any, ClassVar

import torch
from torch import nn
from torch_geometric.data import Data

from ponita.graph import graph_sizes


class NetworkModel(nn.Module):
    """Base of zoo models whose learnable part is one :class:`ponita.Ponita`, ``self.network``.

    A subclass sets ``config_class``, builds ``self.config`` and ``self.network`` in ``__init__(config)``,
    and says in :meth:`_inputs` what the network sees of a batch; it inherits ``from_config``,
    ``calibrated`` and ``calibrate`` (the :class:`~ponita.models.ZooModel` protocol).
    """

    config_class: ClassVar[type]
    network: nn.Module

    @classmethod
    def from_config(cls, config: Any) -> "NetworkModel":
        """A model with the architecture (and statistics) of ``config``, with fresh network weights."""
        return cls(config)

    @property
    def calibrated(self) -> bool:
        """Whether :meth:`calibrate` has run (stored in the state dict)."""
        return bool(self.network.calibrated)

    @torch.no_grad()
    def calibrate(self, data: Data) -> None:
        """Calibrates the network's kernel weights on a training batch (see :meth:`ponita.Ponita.calibrate`)."""
        self.network.calibrate(self._inputs(data))

    @torch.no_grad()
    def grow_from(self, other: "NetworkModel", regrid: bool = False) -> None:
        """Starts this model from the network weights of a trained model of its class (``ponita train``'s
        ``init_from``): its network may have more layers or a multiple of the channels and computes the trained
        function (see :meth:`ponita.Ponita.grow_from`); this model's own statistics (sizes, scales, references) stay
        its own. With ``regrid`` its network may also have another direction grid, which changes the function.

        Raises:
            ValueError: if ``other`` is of another class, or its network does not fit this one's.
        """
        if type(other) is not type(self):
            raise ValueError(f"A {type(self).__name__} cannot start from the weights of another model class, "
                             f"{type(other).__name__}.")
        self.network.grow_from(other.network, regrid=regrid)

    def _inputs(self, data: Data) -> Data:
        """The network's input for a batch of the task's samples."""
        raise NotImplementedError


def graph_fields(data: Data) -> dict[str, Any]:
    """What a network's input must carry of a batch's graphs: ``batch``, ``ptr`` and the host's ``graph_sizes``
    (:func:`ponita.graph.graph_sizes`), whichever ``data`` has; empty for a single graph.

    With ``graph_sizes`` the network builds its fully connected graph without waiting for the device.
    """
    if getattr(data, "batch", None) is None:
        return {}
    fields = {"batch": data.batch}
    if getattr(data, "ptr", None) is not None:
        fields["ptr"] = data.ptr
    sizes = graph_sizes(data)
    if sizes is not None:
        fields["graph_sizes"] = sizes
    return fields
