"""Interatomic potentials built on :class:`ponita.Ponita`, their checkpoints and an ASE calculator."""

from ._calculator import PonitaCalculator
from ._checkpoint import CHECKPOINT_FORMAT, load_potential, read_checkpoint_metadata, save_potential
from ._energy_model import PonitaPotential, compute_forces

__all__ = [
    "CHECKPOINT_FORMAT",
    "PonitaCalculator",
    "PonitaPotential",
    "compute_forces",
    "load_potential",
    "read_checkpoint_metadata",
    "save_potential",
]
