"""PonitaPotential: shapes, forces = −dE/dx, purity, statistics as buffers, errors, checkpoints."""

import pytest
import torch
from torch_geometric.data import Batch, Data

from ponita.datasets import load_rmd17
from ponita.models import PonitaPotential, PotentialConfig, load_model, load_potential, read_checkpoint, save_model
from ponita.testing import assert_forces_match_finite_differences, assert_reload_identical

ETHANOL_E0 = {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}


def tiny_potential(**options: object) -> PonitaPotential:
    return PonitaPotential([1, 6, 8], ETHANOL_E0, 1000.0, hidden_dim=8, num_layers=2, num_ori=4, **options)


@pytest.fixture(scope="module")
def frames() -> list[Data]:
    return load_rmd17("ethanol", "train")[:3]


def test_potential_outputs_energy_per_graph_and_forces_per_atom(frames: list[Data]) -> None:
    energy, forces = tiny_potential()(Batch.from_data_list(frames))
    assert energy.shape == (3,) and energy.dtype == torch.float64
    assert forces.shape == (27, 3)


def test_potential_energy_is_sum_of_reference_energies_plus_scaled_network_output(frames: list[Data]) -> None:
    model = tiny_potential()
    data = frames[0]
    one_hot = (data.z[:, None] == torch.tensor([1, 6, 8])).float()  # [N, 3], the order of atomic_numbers
    atomic, _ = model.network(Data(pos=data.pos, x=one_hot))  # [N, 1]
    expected = (atomic.squeeze(-1).double() * 1000.0).sum() + sum(ETHANOL_E0[int(z)] for z in data.z)
    energy, _ = model(data)
    assert torch.allclose(energy, expected.view(1), rtol=0, atol=1e-6)


def test_potential_forces_match_finite_differences(frames: list[Data]) -> None:
    model = tiny_potential().double().eval()
    data = frames[0]
    _, forces = model(data)
    reference = assert_forces_match_finite_differences(
        lambda pos: model.energy(data, pos), data.pos, eps=1e-5, atol=1e-4
    )
    assert torch.allclose(forces, reference, atol=1e-8)


def test_potential_batch_equals_frames_one_by_one(frames: list[Data]) -> None:
    model = tiny_potential().double()
    energy, forces = model(Batch.from_data_list(frames))
    singles = [model(frame) for frame in frames]
    assert torch.allclose(energy, torch.cat([e for e, _ in singles]), atol=1e-8)
    assert torch.allclose(forces, torch.cat([f for _, f in singles]), atol=1e-10)


def test_potential_is_translation_invariant(frames: list[Data]) -> None:
    model = tiny_potential().double()
    data = frames[0]
    moved = data.clone()
    moved.pos = data.pos + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (e1, f1), (e2, f2) = model(data), model(moved)
    assert torch.allclose(e1, e2, atol=1e-8) and torch.allclose(f1, f2, atol=1e-8)


def test_potential_does_not_modify_its_input(frames: list[Data]) -> None:
    data = frames[0].clone()
    pos = data.pos.clone()
    tiny_potential()(data)
    assert not data.pos.requires_grad and torch.equal(data.pos, pos)
    assert set(data.keys()) == {"z", "pos", "energy", "forces"}


def test_potential_keeps_the_force_graph_only_in_training(frames: list[Data]) -> None:
    model = tiny_potential()
    assert model.train()(frames[0])[1].requires_grad
    assert not model.eval()(frames[0])[1].requires_grad


def test_potential_statistics_are_buffers_in_the_state_dict() -> None:
    state = tiny_potential().state_dict()
    assert {"atomic_numbers", "reference_energies", "scale", "element_index"} <= set(state)
    assert state["reference_energies"].tolist() == [-600_000.0, -200_000.0, -100_000.0]
    assert float(state["scale"]) == 1000.0


def test_potential_double_makes_forces_float64(frames: list[Data]) -> None:
    energy, forces = tiny_potential().double()(frames[0])
    assert energy.dtype == forces.dtype == torch.float64


def test_potential_rejects_unknown_elements() -> None:
    data = Data(z=torch.tensor([1, 7]), pos=torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"element\(s\) \[7\] that the model was not trained on"):
        tiny_potential()(data)


def test_potential_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"reference_energies lacks the element\(s\) \[8\]"):
        PonitaPotential([1, 8], {1: 0.0}, 1.0)
    with pytest.raises(ValueError, match="scale must be positive"):
        PonitaPotential([1], {1: 0.0}, 0.0)
    with pytest.raises(ValueError, match="distinct"):
        PonitaPotential([1, 1], {1: 0.0}, 1.0)
    with pytest.raises(TypeError, match=r"sets the network option\(s\) \['task_level'\] itself"):
        PonitaPotential([1], {1: 0.0}, 1.0, task_level="graph")
    with pytest.raises(TypeError, match="Unknown network option"):
        PonitaPotential([1], {1: 0.0}, 1.0, hiden_dim=8)


def test_potential_repr_shows_elements_and_scale() -> None:
    assert tiny_potential().extra_repr() == "atomic_numbers=[1, 6, 8], scale=1000"


def test_potential_config_rebuilds_the_potential_with_its_statistics() -> None:
    model = tiny_potential()
    assert model.config == PotentialConfig([1, 6, 8], ETHANOL_E0, 1000.0, {"hidden_dim": 8, "num_layers": 2, "num_ori": 4})
    rebuilt = PonitaPotential.from_config(model.config)
    assert rebuilt.config == model.config and torch.equal(rebuilt.reference_energies, model.reference_energies)


def test_potential_reload_gives_bit_identical_outputs(frames: list[Data], tmp_path) -> None:
    model = tiny_potential().eval()
    assert_reload_identical(model, frames[0], tmp_path)
    path = save_model(model, tmp_path / "potential.pt", task="md17", note="hello")
    reloaded = load_potential(path)
    for a, b in zip(model(frames[0]), reloaded(frames[0])):
        assert torch.equal(a, b)
    checkpoint = read_checkpoint(path)
    assert (checkpoint.metadata, checkpoint.task, checkpoint.model_class) == ({"note": "hello"}, "md17", "PonitaPotential")
    assert reloaded.config == model.config and isinstance(load_model(path), PonitaPotential)


def test_potential_reload_keeps_float64_and_the_float64_buffers(frames: list[Data], tmp_path) -> None:
    model = tiny_potential().double().eval()
    reloaded = load_potential(save_model(model, tmp_path / "potential.pt"))
    assert reloaded.network.embedding.weight.dtype == torch.float64
    assert torch.equal(model(frames[0])[1], reloaded(frames[0])[1])
    float32 = load_potential(save_model(tiny_potential(), tmp_path / "float32.pt"))
    assert float32.network.grid.dtype == float32.reference_energies.dtype == torch.float64


def test_load_potential_rejects_other_files(tmp_path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a ponita model checkpoint"):
        load_potential(tmp_path / "other.pt")
    (tmp_path / "truncated.pt").write_bytes(save_model(tiny_potential(), tmp_path / "p.pt").read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.pt is not a readable checkpoint"):
        load_potential(tmp_path / "truncated.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_potential(tmp_path / "missing.pt")


def test_save_model_rejects_a_model_outside_the_zoo(tmp_path) -> None:
    with pytest.raises(TypeError, match="Linear is not a registered zoo model"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "linear.pt")
