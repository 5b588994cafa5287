"""Golden values: fixed networks still compute the outputs stored in ``tests/data/golden_values.pt``.

The file holds, for every space in :data:`ponita.SPACES`, a small float64 :class:`ponita.Ponita` (its
config and state dict), a fixed input of two graphs and the outputs it gave when the file was written,
and the same for a :class:`ponita.models.PonitaPotential` on three bundled ethanol frames. Each test
rebuilds a network from the stored config and state dict and checks that it reproduces the stored
outputs to ``1e-12`` (float64, outputs of order one), with the ``reference`` and the ``cpu`` backends.

A failure means the function a network computes has changed. The file is written by
``scripts/make_golden_values.py``; regenerate it only for a deliberate change (see that script).
A renamed or reshaped parameter fails ``load_state_dict``: convert the stored state dicts instead.
"""

import dataclasses
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import ponita
from ponita import Ponita
from ponita.datasets import load_rmd17
from ponita.models import PonitaPotential, PotentialConfig
from ponita.ops import use_backend

GOLDEN_PATH = Path(__file__).parent / "data" / "golden_values.pt"
ATOL = 1e-12
GRID_ATOL = 1e-9
F64 = torch.float64
BACKENDS = ("reference", "cpu")


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(GOLDEN_PATH, weights_only=True)


def _rebuild_ponita(entry: dict) -> Ponita:
    model = Ponita(**entry["config"]).to(F64)
    model.load_state_dict(entry["state_dict"])  # strict: same names and shapes as when the file was written
    return model.eval()


def _rebuild_potential(entry: dict) -> PonitaPotential:
    model = PonitaPotential.from_config(PotentialConfig(**entry["config"])).to(F64)
    model.load_state_dict(entry["state_dict"])
    return model.eval()


def _ponita_outputs(model: Ponita, inputs: dict, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    with use_backend(backend), torch.no_grad():
        return model(Data(**inputs))


def _potential_outputs(model: PonitaPotential, inputs: dict, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    with use_backend(backend):
        energy, forces = model(Data(**inputs))
    return energy.detach(), forces.detach()


def _assert_golden(actual: torch.Tensor, expected: torch.Tensor, name: str, atol: float = ATOL) -> None:
    torch.testing.assert_close(
        actual, expected, rtol=0.0, atol=atol, msg=lambda message: f"{name} differs from its golden value: {message}"
    )


def _assert_ponita_golden(scalar: torch.Tensor, vector: torch.Tensor, entry: dict, space: str) -> None:
    _assert_golden(scalar, entry["scalar"], f"{space} scalar")
    _assert_golden(vector, entry["vector"], f"{space} vector")


def _max_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max()) if actual.numel() else 0.0


def test_golden_file_covers_every_space_and_stays_small(golden: dict) -> None:
    assert golden["format"] == 1
    assert set(golden["ponita"]) == set(ponita.SPACES)
    assert GOLDEN_PATH.stat().st_size < 200_000
    assert golden["ponita"]["R3xS2"]["config"]["kernel_condition_dim"] == 1


@pytest.mark.parametrize("space", ponita.SPACES)
def test_golden_outputs_are_of_order_one_so_the_tolerance_is_strict(golden: dict, space: str) -> None:
    """An absolute 1e-12 is only a strict test for outputs that are neither tiny nor huge."""
    entry = golden["ponita"][space]
    assert 1e-2 < float(entry["scalar"].abs().max()) < 1e2
    assert entry["scalar"].shape == (9, 1)
    if entry["config"]["output_dim_vec"]:
        assert 1e-2 < float(entry["vector"].abs().max()) < 1e2


@pytest.mark.parametrize("space", ponita.SPACES)
def test_fresh_network_has_the_stored_config_and_buffers(golden: dict, space: str) -> None:
    """The config round-trips and the grid a new network builds is the stored one (before loading it)."""
    entry = golden["ponita"][space]
    model = Ponita(**entry["config"])
    config = dataclasses.asdict(model.config)
    assert {name: config[name] for name in entry["config"]} == entry["config"]
    added = {name: config[name] for name in set(config) - set(entry["config"])}
    assert added == {"connect_lifted": "edges"}  # options added since the file was written: their defaults
    # The file predates the space owning its grid: its "grid" is now "space.grid" (load_state_dict maps it).
    stored_keys = {"space.grid" if key == "grid" else key for key in entry["state_dict"]}
    assert set(model.state_dict()) == stored_keys
    if model.grid is not None:
        # Grids found by an iterative repulsion (SO(3): 300 steps in float64) accumulate round-off in an order
        # that depends on the CPU's vector width: 1.4e-11 apart on an AVX-512 host. The network outputs
        # below are compared at ATOL on the stored grid, which the state dict loads.
        _assert_golden(model.grid, entry["state_dict"]["grid"], f"{space} grid", atol=GRID_ATOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("space", ponita.SPACES)
def test_ponita_outputs_equal_golden_values(golden: dict, space: str, backend: str) -> None:
    entry = golden["ponita"][space]
    scalar, vector = _ponita_outputs(_rebuild_ponita(entry), entry["inputs"], backend)
    _assert_ponita_golden(scalar, vector, entry, space)


@pytest.mark.parametrize("backend", BACKENDS)
def test_potential_energies_and_forces_equal_golden_values(golden: dict, backend: str) -> None:
    entry = golden["potential"]
    energy, forces = _potential_outputs(_rebuild_potential(entry), entry["inputs"], backend)
    assert 1e-2 < float(entry["forces"].abs().max()) < 1e2 and float(entry["energy"].abs().max()) < 1e2
    _assert_golden(energy, entry["energy"], "potential energy")
    _assert_golden(forces, entry["forces"], "potential forces")


def test_potential_golden_inputs_are_the_first_three_bundled_ethanol_test_frames(golden: dict) -> None:
    """Separates a change of the bundled data from a change of the model."""
    inputs = golden["potential"]["inputs"]
    frames = load_rmd17("ethanol", "test")[:3]
    assert torch.equal(inputs["z"], torch.cat([frame.z for frame in frames]))
    assert torch.equal(inputs["pos"], torch.cat([frame.pos for frame in frames]))
    assert torch.equal(inputs["batch"], torch.tensor([0] * 9 + [1] * 9 + [2] * 9))


# --- negative controls: the comparison resolves a change far below any real bug ---------------------


@pytest.mark.parametrize("space", ponita.SPACES)
def test_golden_comparison_detects_one_weight_changed_by_1e_minus_9(golden: dict, space: str) -> None:
    entry = golden["ponita"][space]
    model = _rebuild_ponita(entry)
    with torch.no_grad():
        model.embedding.weight[0, 0] += 1e-9
    scalar, vector = _ponita_outputs(model, entry["inputs"], "reference")
    difference = max(_max_difference(scalar, entry["scalar"]), _max_difference(vector, entry["vector"]))
    assert difference > 10 * ATOL, f"a 1e-9 change of one weight moved the outputs by only {difference:.1e}"
    with pytest.raises(AssertionError, match="differs from its golden value"):
        _assert_ponita_golden(scalar, vector, entry, space)


def test_potential_golden_comparison_detects_one_weight_changed_by_1e_minus_9(golden: dict) -> None:
    entry = golden["potential"]
    model = _rebuild_potential(entry)
    with torch.no_grad():
        model.network.layers[-1].conv.weight[0, 0] += 1e-9
    energy, forces = _potential_outputs(model, entry["inputs"], "reference")
    assert _max_difference(energy, entry["energy"]) > 10 * ATOL
    assert _max_difference(forces, entry["forces"]) > 10 * ATOL
    with pytest.raises(AssertionError, match="potential forces differs from its golden value"):
        _assert_golden(forces, entry["forces"], "potential forces")
