"""Tests of ponita.datasets._ase_files: extxyz frames with energies and forces, units and errors."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ponita.datasets import KCAL_PER_MOL_TO_MEV, load_ase_file


def _labelled_water(seed: int) -> Atoms:
    """A water molecule with random positions, energy and forces attached through a SinglePointCalculator."""
    rng = np.random.default_rng(seed)
    atoms = Atoms("OH2", positions=rng.normal(size=(3, 3)))
    atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()) - 10.0, forces=rng.normal(size=(3, 3)))
    return atoms


def test_load_extxyz_converts_ev_to_mev(tmp_path: Path) -> None:
    written = [_labelled_water(seed) for seed in range(3)]
    path = tmp_path / "water.extxyz"
    ase.io.write(path, written)
    frames = load_ase_file(path)
    assert len(frames) == 3
    frame = frames[2]
    assert frame.z.dtype == torch.long and frame.z.tolist() == [8, 1, 1]
    assert frame.pos.shape == (3, 3) and frame.pos.dtype == torch.float64
    assert frame.energy.shape == (1,) and frame.energy.dtype == torch.float64
    np.testing.assert_allclose(frame.pos.numpy(), written[2].positions)
    assert frame.energy.item() == pytest.approx(written[2].get_potential_energy() * 1000.0)
    np.testing.assert_allclose(frame.forces.numpy(), written[2].get_forces() * 1000.0)


@pytest.mark.parametrize(("energy_unit", "factor"), [("meV", 1.0), ("kcal/mol", KCAL_PER_MOL_TO_MEV)])
def test_load_extxyz_energy_units(tmp_path: Path, energy_unit: str, factor: float) -> None:
    atoms = _labelled_water(seed=0)
    path = tmp_path / "water.extxyz"
    ase.io.write(path, atoms)
    (frame,) = load_ase_file(path, energy_unit=energy_unit)
    assert frame.energy.item() == pytest.approx(atoms.get_potential_energy() * factor)
    np.testing.assert_allclose(frame.forces.numpy(), atoms.get_forces() * factor)


def test_load_extxyz_index_selects_frames(tmp_path: Path) -> None:
    path = tmp_path / "water.extxyz"
    ase.io.write(path, [_labelled_water(seed) for seed in range(4)])
    assert len(load_ase_file(path, index="1:3")) == 2
    assert len(load_ase_file(path, index=0)) == 1


def test_load_frame_without_forces_raises(tmp_path: Path) -> None:
    atoms = Atoms("OH2", positions=np.zeros((3, 3)))
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0)
    path = tmp_path / "no_forces.extxyz"
    ase.io.write(path, [_labelled_water(seed=0), atoms])
    with pytest.raises(ValueError, match=r"no_forces\.extxyz, frame 1: no forces found"):
        load_ase_file(path)


def test_load_frame_without_labels_raises(tmp_path: Path) -> None:
    path = tmp_path / "bare.extxyz"
    ase.io.write(path, Atoms("OH2", positions=np.zeros((3, 3))))
    with pytest.raises(ValueError, match="frame 0: no energy or forces found"):
        load_ase_file(path)


def test_load_periodic_frame_raises(tmp_path: Path) -> None:
    atoms = _labelled_water(seed=0)
    atoms.set_cell([10.0, 10.0, 10.0])
    atoms.set_pbc(True)
    path = tmp_path / "periodic.extxyz"
    ase.io.write(path, atoms)
    with pytest.raises(ValueError, match="periodic boundary conditions"):
        load_ase_file(path)


def test_load_unknown_energy_unit_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown energy_unit 'hartree'; choose one of eV, meV, kcal/mol"):
        load_ase_file(tmp_path / "any.extxyz", energy_unit="hartree")


def test_load_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"No such file: .*missing\.extxyz"):
        load_ase_file(tmp_path / "missing.extxyz")
