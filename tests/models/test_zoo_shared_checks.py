"""Every zoo model through the shared checks of ``ponita.testing`` (R15): equivariance under rotations,
translations and node permutations, and bit-identical reloading from its config and state dict; and the
checks catch zoo models that break them.

Each case is a tiny float64 model, a batch of two or three graphs, and what the check needs to know
about the model: how its input fields and outputs transform, and how to call it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.geometry import rotation_group
from ponita.models import (
    EDM,
    EDMConfig,
    EGNNConfig,
    EGNNNBody,
    NBodyConfig,
    PonitaNBody,
    PonitaPotential,
    PonitaRegressor,
    RegressorConfig,
)
from ponita.testing import assert_equivariant, assert_reload_identical

F64 = torch.float64
ELEMENTS = [1, 6, 8]
E0 = {1: -10.0, 6: -20.0, 8: -30.0}
# 12 directions on the icosahedron's vertices: the icosahedral group maps the grid onto itself, so the
# fibre bundle is exactly equivariant to its elements (and only approximately to other rotations).
NETWORK = {"hidden_dim": 8, "num_layers": 2, "num_ori": 12, "grid": "polyhedron", "basis_dim": 8, "widening_factor": 2}
POINTS_NETWORK = {"hidden_dim": 8, "num_layers": 2, "basis_dim": 8, "widening_factor": 2, "space": "R3xS2-lifted",
                  "connect_lifted": "all"}
GRID_ROTATION = rotation_group("icosahedral", dtype=F64)[7]
NBODY_INPUTS = {"pos": "position", "vel": "vector"}


def molecule(num_atoms: int) -> Data:
    """Random atoms of H, C, O with 3 input features each and a chain of bonds (both directions)."""
    chain = torch.arange(num_atoms - 1)
    bonds = torch.stack([torch.cat([chain, chain + 1]), torch.cat([chain + 1, chain])])  # [2, 2 (n - 1)]
    z = torch.tensor(ELEMENTS)[torch.randint(len(ELEMENTS), (num_atoms,))]
    return Data(z=z, pos=2.0 * torch.randn(num_atoms, 3, dtype=F64), x=torch.randn(num_atoms, 3, dtype=F64),
                edge_index=bonds)  # fmt: skip


def particles(num_particles: int) -> Data:
    charge = torch.where(torch.rand(num_particles, 1) < 0.5, -1.0, 1.0).to(F64)  # [N, 1]
    return Data(pos=torch.randn(num_particles, 3, dtype=F64), vel=torch.randn(num_particles, 3, dtype=F64),
                charge=charge)  # fmt: skip


def noisy_molecule(num_atoms: int) -> Data:
    """A molecule as EDM's denoiser sees it: noisy features ``h`` ``[N, T + 1]`` and the time ``t`` ``[N]``."""
    data = molecule(num_atoms)
    data.h = torch.randn(num_atoms, len(ELEMENTS) + 1, dtype=F64)
    data.t = torch.full((num_atoms,), 0.4, dtype=F64)
    return data


def edm_noise(model: EDM, data: Data) -> tuple[Tensor, Tensor]:
    """EDM's work is its noise prediction (it has no ``forward``)."""
    return model.predict_noise(data.pos, data.h, data.t, data.batch)


@dataclass
class ZooCase:
    """A tiny zoo model, its input, and what :func:`assert_equivariant` needs to know about it."""

    make: Callable[[], nn.Module]
    sample: Callable[[int], Data]
    rotation: Tensor | None = None  # None: a random rotation (exactly equivariant models)
    options: dict[str, Any] = field(default_factory=dict)

    def model_and_data(self) -> tuple[nn.Module, Batch]:
        return self.make().double(), Batch.from_data_list([self.sample(n) for n in (4, 5, 3)])


CASES = {
    # (energy [G], forces [N, 3]) transform as Ponita's (scalar, vector): the defaults.
    "PonitaPotential": ZooCase(lambda: PonitaPotential(ELEMENTS, E0, 100.0, **NETWORK), molecule, GRID_ROTATION),
    "PonitaNBody": ZooCase(lambda: PonitaNBody(NBodyConfig(dict(NETWORK))), particles, GRID_ROTATION,
                           {"inputs": NBODY_INPUTS, "outputs": ("position",)}),
    "EGNNNBody": ZooCase(lambda: EGNNNBody(EGNNConfig(hidden_dim=8, num_layers=2)), particles, None,
                         {"inputs": NBODY_INPUTS, "outputs": ("position",)}),
    "PonitaRegressor": ZooCase(lambda: PonitaRegressor(RegressorConfig(1.0, 2.0, 3, network=dict(NETWORK))), molecule,
                               GRID_ROTATION, {"outputs": ("invariant",)}),
    # bonds lifted to oriented points: a point cloud, exactly equivariant to every rotation; uses edge_index
    "PonitaRegressor-lifted": ZooCase(
        lambda: PonitaRegressor(RegressorConfig(1.0, 2.0, 3, network=dict(POINTS_NETWORK))),
        molecule, None, {"outputs": ("invariant",)},
    ),
    "EDM": ZooCase(lambda: EDM(EDMConfig(ELEMENTS, {3: 1, 4: 2, 5: 1}, steps=10, network=dict(NETWORK))),
                   noisy_molecule, GRID_ROTATION, {"outputs": ("vector", "invariant"), "call": edm_noise}),
}


@pytest.mark.parametrize("name", CASES)
def test_zoo_model_is_equivariant_to_rotations_translations_and_permutations(name: str) -> None:
    case = CASES[name]
    model, data = case.model_and_data()
    errors = assert_equivariant(model, data, rotation=case.rotation, **case.options)
    assert len(errors) == len(case.options.get("outputs", ("energy", "forces")))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_zoo_model_reloads_from_config_and_state_dict_bit_identical(name: str, mode: str, tmp_path) -> None:
    case = CASES[name]
    model, data = case.model_and_data()
    model.calibrate(data)
    model.train(mode == "train")
    reloaded = assert_reload_identical(model, data, tmp_path, call=case.options.get("call"))
    assert type(reloaded) is type(model) and reloaded.config == model.config and reloaded.calibrated


# --- the checks fail for zoo models that break them -------------------------------------------------------------


class TiltedPotential(PonitaPotential):
    """A potential with an external field along x: its energy is not rotation invariant."""

    def energy(self, data: Data, pos: Tensor) -> Tensor:
        return super().energy(data, pos) + 0.1 * pos[:, 0].sum().double()


class ShiftedPotential(PonitaPotential):
    """A potential whose energy depends on an attribute that is neither config nor state dict."""

    shift = 0.0

    def energy(self, data: Data, pos: Tensor) -> Tensor:
        return super().energy(data, pos) + self.shift


def test_assert_equivariant_catches_a_potential_that_is_not_invariant() -> None:
    model = TiltedPotential(ELEMENTS, E0, 100.0, **NETWORK).double()
    data = Batch.from_data_list([molecule(4), molecule(5)])
    with pytest.raises(AssertionError, match=r"not equivariant[\s\S]*0: invariant .* NO\n1: vector .* NO"):
        assert_equivariant(model, data, rotation=GRID_ROTATION)


def test_assert_equivariant_catches_a_fibre_bundle_off_its_grid_rotations() -> None:
    # the polyhedron grid is only approximately equivariant to a rotation outside the icosahedral group
    model, data = CASES["PonitaPotential"].model_and_data()
    off_grid = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.1], [0.3, 0.0, -0.2], [-0.1, 0.2, 0.0]], dtype=F64))
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(model, data, rotation=off_grid)


def test_assert_equivariant_checks_what_the_nbody_models_declare() -> None:
    model, data = CASES["EGNNNBody"].model_and_data()
    with pytest.raises(AssertionError, match="not equivariant"):  # a position is not a translation-free vector
        assert_equivariant(model, data, inputs=NBODY_INPUTS, outputs=("vector",))
    with pytest.raises(AssertionError, match="not equivariant"):  # the velocities must turn with the positions
        assert_equivariant(model, data, inputs={"pos": "position"}, outputs=("position",))


def test_reload_check_catches_a_potential_with_state_outside_config_and_state_dict(tmp_path) -> None:
    model = ShiftedPotential(ELEMENTS, E0, 100.0, **NETWORK).double().eval()
    data = molecule(5)
    assert_reload_identical(model, data, tmp_path)
    model.shift = 1e-9
    with pytest.raises(AssertionError, match="Reloaded output 0 differs"):
        assert_reload_identical(model, data, tmp_path)
