"""Interatomic potentials built on :class:`ponita.Ponita`, their checkpoints and an ASE calculator."""

from ._energy_model import PonitaPotential, compute_forces

__all__ = ["PonitaPotential", "compute_forces"]
