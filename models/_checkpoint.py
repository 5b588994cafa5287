"""Saving and loading a :class:`PonitaPotential`: weights, constructor arguments and code versions."""

import logging
import pickle
import warnings
from pathlib import Path

import torch

import ponita

from ._energy_model import PonitaPotential

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ponita-potential/1"
"""The value of the ``"format"`` key of every potential checkpoint written by :func:`save_potential`."""


def save_potential(model: PonitaPotential, path: str | Path, **metadata: object) -> Path:
    """Writes ``model`` to ``path`` as a self-describing checkpoint.

    The file is a ``torch.save`` dict with keys ``format`` (:data:`CHECKPOINT_FORMAT`), ``config`` (the
    constructor arguments, :meth:`PonitaPotential.config`), ``state_dict`` (weights and buffers, on the
    CPU), ``dtype`` (``"float32"`` or ``"float64"``), ``versions`` (ponita and torch) and ``metadata``
    (anything JSON-like the caller adds, e.g. the training config and test scores).

    Args:
        model: the potential to save.
        path: the file to write; its folder is created.
        **metadata: extra JSON-like values stored under ``"metadata"``.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> model = PonitaPotential([1], {1: 0.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4)
        >>> path = save_potential(model, "/tmp/potential.pt")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config(),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "dtype": str(model.network.embedding.weight.dtype).removeprefix("torch."),
        "versions": {"ponita": str(ponita.__version__), "torch": str(torch.__version__)},
        "metadata": dict(metadata),
    }
    torch.save(checkpoint, path)
    logger.info("Saved the potential to %s", path)
    return path


def read_checkpoint_metadata(path: str | Path) -> dict[str, object]:
    """The ``metadata`` dict of a potential checkpoint (e.g. the training config and data protocol)."""
    return dict(_read(path, "cpu").get("metadata", {}))


def load_potential(path: str | Path, map_location: str | torch.device = "cpu") -> PonitaPotential:
    """Rebuilds the potential saved by :func:`save_potential`, in eval mode.

    Warns when the checkpoint was written by another ponita version.

    Args:
        path: a checkpoint file written by :func:`save_potential` (or by ``ponita train``).
        map_location: the device to load onto.

    Returns:
        The potential, with the saved weights, buffers and dtype.

    Raises:
        ValueError: if the file is not a ponita potential checkpoint.

    Example:
        >>> model = load_potential("runs/ethanol/potential.pt")  # doctest: +SKIP
    """
    checkpoint = _read(path, map_location)
    saved_version = checkpoint["versions"]["ponita"]
    if saved_version != ponita.__version__:
        warnings.warn(
            f"{path} was written by ponita {saved_version}; this is ponita {ponita.__version__}. "
            "Outputs may differ.",
            stacklevel=2,
        )
    model = PonitaPotential(**checkpoint["config"])
    if checkpoint["dtype"] == "float64":
        model.double()
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(map_location).eval()


def _read(path: str | Path, map_location: str | torch.device) -> dict:
    """Reads and checks a potential checkpoint."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        checkpoint = None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(
            f"{path} is not a ponita potential checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r}). "
            "Pass the potential.pt written by `ponita train` or save_potential; Lightning's .ckpt files hold "
            "the training state and are used with `ponita train --resume`."
        )
    return checkpoint
