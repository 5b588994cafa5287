"""The cutoff window makes a potential with a radius smooth: energy and forces are continuous when an
atom crosses the cutoff distance of another, and without the window they jump."""

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data

from ponita.models import PonitaPotential

RADIUS = 2.0
EPSILON = 1e-6


def _potential(space: str) -> PonitaPotential:
    num_ori = 4 if space == "R3xS2" else None
    model = PonitaPotential([1, 8], {1: 0.0, 8: 0.0}, 1.0, space=space, num_ori=num_ori, radius=RADIUS,
                            hidden_dim=8, basis_dim=8, num_layers=2)
    model.double().eval()
    model.calibrate(_molecule(1.0))  # kernels of order one, so an edge changes the energy visibly
    return model


def _molecule(distance: float) -> Data:
    """Atoms 0 and 1 bonded (1 Å); atom 2 at ``distance`` from atom 0 along y, √(1 + d²) > r from atom 1."""
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, distance, 0.0]], dtype=torch.float64)
    return Data(z=torch.tensor([8, 1, 1]), pos=pos)


def _across_the_cutoff(model: PonitaPotential, epsilon: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Energy and forces with atom 2 at r − ε (one edge more) and at r + ε from atom 0."""
    energy_in, forces_in = model(_molecule(RADIUS - epsilon))
    energy_out, forces_out = model(_molecule(RADIUS + epsilon))
    return energy_in, energy_out, forces_in, forces_out


@pytest.mark.parametrize("space", ["R3", "R3xS2"])
def test_energy_and_forces_are_continuous_when_an_atom_crosses_the_cutoff(space: str) -> None:
    model = _potential(space)
    energy_in, energy_out, forces_in, forces_out = _across_the_cutoff(model, EPSILON)
    assert float((energy_in - energy_out).detach().abs()) < 1e-8
    assert float((forces_in - forces_out).abs().max()) < 1e-8
    # Outside the cutoff atom 2 is isolated: no force on it, and the energy does not depend on where it is.
    assert float(forces_out[2].abs().max()) < 1e-12
    assert float((model(_molecule(RADIUS + 0.5))[0] - energy_out).detach().abs()) < 1e-12
    # Finite-difference forces along the path just inside and just outside agree too (both ~ 0 at r).
    h = 1e-7
    slopes = [
        (model(_molecule(d + h))[0] - model(_molecule(d - h))[0]) / (2 * h)
        for d in (RADIUS - 10 * EPSILON, RADIUS + 10 * EPSILON)
    ]
    assert float((slopes[0] - slopes[1]).detach().abs()) < 1e-6
    # ... and well inside the atoms do interact, so the checks above are not trivially met.
    assert float(model(_molecule(0.8 * RADIUS))[1][2].abs().max()) > 1e-2


@pytest.mark.parametrize("space", ["R3", "R3xS2"])
def test_energy_and_forces_jump_at_the_cutoff_without_the_window(space: str, monkeypatch) -> None:
    model = _potential(space)
    monkeypatch.setattr(model.network, "window", None)
    energy_in, energy_out, forces_in, forces_out = _across_the_cutoff(model, EPSILON)
    assert float((energy_in - energy_out).detach().abs()) > 1e-3
    assert float((forces_in - forces_out).abs().max()) > 1e-3
