"""PonitaCalculator inside ASE: units, shapes, forces = −dE/dx, NVE energy conservation."""

import numpy as np
import pytest
import torch
import ase.io
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces
from torch_geometric.data import Data

from ponita.datasets import load_rmd17
from ponita.models import PonitaCalculator, PonitaPotential, save_model
from ponita.train import run_md


def ethanol() -> Atoms:
    frame = load_rmd17("ethanol", "test")[0]
    return Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())


def tiny_potential() -> PonitaPotential:
    energies = {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}
    return PonitaPotential([1, 6, 8], energies, 1000.0, hidden_dim=8, num_layers=2, num_ori=4)


def test_calculator_returns_ev_and_ev_per_angstrom() -> None:
    model = tiny_potential().double()
    atoms = ethanol()
    atoms.calc = PonitaCalculator(model)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    data = Data(z=torch.as_tensor(atoms.numbers), pos=torch.as_tensor(atoms.positions))
    energy_mev, forces_mev = (tensor.detach() for tensor in model(data))
    assert isinstance(energy, float) and forces.shape == (9, 3) and forces.dtype == np.float64
    assert energy == pytest.approx(float(energy_mev) / 1000.0, rel=1e-12)
    assert np.allclose(forces, forces_mev.numpy() / 1000.0, atol=1e-12)


def test_calculator_forces_are_negative_energy_gradient_in_ase() -> None:
    atoms = ethanol()
    atoms.calc = PonitaCalculator(tiny_potential().double())
    numerical = calculate_numerical_forces(atoms, eps=1e-4)
    assert np.allclose(atoms.get_forces(), numerical, atol=1e-6)


def test_calculator_from_checkpoint(tmp_path) -> None:
    model = tiny_potential()
    path = save_model(model, tmp_path / "potential.pt")
    atoms = ethanol()
    atoms.calc = PonitaCalculator.from_checkpoint(path)
    reference = ethanol()
    reference.calc = PonitaCalculator(model)
    assert atoms.get_potential_energy() == reference.get_potential_energy()


def test_calculator_rejects_periodic_systems() -> None:
    atoms = ethanol()
    atoms.cell, atoms.pbc = [10.0, 10.0, 10.0], True
    atoms.calc = PonitaCalculator(tiny_potential())
    with pytest.raises(ValueError, match="isolated molecule"):
        atoms.get_potential_energy()


def test_nve_energy_drift_is_small(tmp_path) -> None:
    atoms = ethanol()
    atoms.calc = PonitaCalculator(tiny_potential().double())
    result = run_md(atoms, steps=40, temperature=300.0, ensemble="nve", timestep=0.25,
                    trajectory=tmp_path / "traj.xyz", write_every=10)
    assert len(result.total_energy) == 41
    assert result.max_drift_per_atom < 1e-3  # eV/atom
    assert len(ase.io.read(tmp_path / "traj.xyz", index=":")) == 5


@pytest.fixture
def traced_without_codegen(monkeypatch: pytest.MonkeyPatch) -> list:
    """Compiles with the aot_eager backend (the same trace and capture as Inductor, without code generation)."""
    import ponita.models._calculator as calculator_module
    from ponita.models import compile_energy_and_forces

    compiled = []

    def compile_fast(energy, example_pos):
        compiled.append(example_pos.shape[0])
        return compile_energy_and_forces(energy, example_pos, backend="aot_eager")

    monkeypatch.setattr(calculator_module, "compile_energy_and_forces", compile_fast)
    return compiled


def test_compiled_calculator_matches_eager_along_a_trajectory_and_recompiles_for_new_atoms(traced_without_codegen) -> None:
    model = tiny_potential().double()
    eager, compiled = ethanol(), ethanol()
    eager.calc, compiled.calc = PonitaCalculator(model), PonitaCalculator(model, compile=True)
    for step in range(3):  # the traced graph follows the atoms as they move
        for atoms in (eager, compiled):
            atoms.positions = atoms.positions + 0.01 * step
        assert compiled.get_potential_energy() == pytest.approx(eager.get_potential_energy(), rel=1e-12)
        assert np.allclose(compiled.get_forces(), eager.get_forces(), atol=1e-12)
    assert traced_without_codegen == [9]  # traced once
    water = Atoms("OH2", positions=[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    water.calc = compiled.calc
    reference = Atoms("OH2", positions=water.positions)
    reference.calc = PonitaCalculator(model)
    assert np.allclose(water.get_forces(), reference.get_forces(), atol=1e-12)
    assert traced_without_codegen == [9, 3]  # new atoms: traced again


def test_compiled_calculator_rejects_unknown_elements_like_the_eager_one(traced_without_codegen) -> None:
    atoms = Atoms("NH3", positions=[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    atoms.calc = PonitaCalculator(tiny_potential().double(), compile=True)
    with pytest.raises(ValueError, match=r"element\(s\) \[7\]"):
        atoms.get_forces()


def test_compiled_calculator_with_a_radius_follows_pairs_across_the_cutoff(traced_without_codegen) -> None:
    energies = {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}
    model = PonitaPotential([1, 6, 8], energies, 1000.0, hidden_dim=8, num_layers=2, num_ori=4, radius=2.0).double()
    eager, compiled = ethanol(), ethanol()
    eager.calc, compiled.calc = PonitaCalculator(model), PonitaCalculator(model, compile=True)
    for stretch in (1.0, 1.3, 0.8):  # pairs leave and enter the 2 Å radius graph the eager model builds
        for atoms in (eager, compiled):
            atoms.positions = ethanol().positions * stretch
        assert compiled.get_potential_energy() == pytest.approx(eager.get_potential_energy(), rel=1e-12)
        assert np.allclose(compiled.get_forces(), eager.get_forces(), atol=1e-10)
    assert traced_without_codegen == [9]


def test_compiled_calculator_refuses_a_lifted_space_with_a_radius(traced_without_codegen) -> None:
    energies = {1: 0.0, 6: 0.0, 8: 0.0}
    model = PonitaPotential([1, 6, 8], energies, 1.0, space="R3xS2-lifted", hidden_dim=8, num_layers=1, radius=2.0)
    atoms = ethanol()
    atoms.calc = PonitaCalculator(model.double(), compile=True)
    with pytest.raises(ValueError, match="compile=False"):
        atoms.get_forces()


def test_inductor_compiled_energy_and_forces_match_eager() -> None:
    """The default backend: the traced graph compiled by Inductor (C++ wrapper on the CPU), called without Dynamo."""
    from ponita.models import compile_energy_and_forces

    torch.manual_seed(0)
    model = tiny_potential().eval()
    atoms = ethanol()
    z, pos = torch.as_tensor(atoms.numbers), torch.as_tensor(atoms.positions, dtype=torch.float32)
    edges = model.network.static_edges(len(atoms))
    compiled = compile_energy_and_forces(lambda p: model.energy(Data(z=z, pos=p, edge_index=edges), p), pos)
    for shift in (0.0, 0.05):
        moved = pos + shift
        energy, forces = compiled(moved)
        eager_energy, eager_forces = model(Data(z=z, pos=moved))
        assert torch.allclose(energy, eager_energy.detach(), rtol=1e-5)
        assert torch.allclose(forces, eager_forces.detach(), atol=1e-4 * float(eager_forces.abs().max()))


def test_the_fast_state_check_sees_every_change_that_matters() -> None:
    atoms = ethanol()
    calculator = PonitaCalculator(tiny_potential().double())
    atoms.calc = calculator
    calls = []
    original = calculator.calculate
    calculator.calculate = lambda *args, **kwargs: (calls.append(1), original(*args, **kwargs))[1]
    energy = atoms.get_potential_energy()
    atoms.get_forces()
    assert len(calls) == 1  # same atoms: cached
    atoms.positions[0, 0] += 0.01
    assert atoms.get_potential_energy() != energy and len(calls) == 2
    assert calculator.check_state(atoms) == []
    changed = atoms.copy()
    changed.numbers[0] = 1 if changed.numbers[0] != 1 else 6
    assert "numbers" in calculator.check_state(changed)
    changed = atoms.copy()
    changed.cell = [10.0, 10.0, 10.0]
    assert "cell" in calculator.check_state(changed)
    atoms.pbc = True
    with pytest.raises(ValueError, match="pbc"):
        atoms.get_potential_energy()
