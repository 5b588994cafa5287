"""EDM's molecule metrics: bond orders from distances, stability, validity, uniqueness; the CLI; QM9's own numbers."""

import json
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest

from ponita.datasets import (
    Molecule,
    bond_orders,
    draw_molecules,
    molecule_metrics,
    molecule_smiles,
    read_molecules,
    stable_atoms,
    valence_errors,
    write_molecules,
)
from ponita.train.cli import main

EDM_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "qm9" / "edm_qm9_test.npz"
METHANE = Molecule.from_atomic_numbers(
    [6, 1, 1, 1, 1], np.array([[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])
)


def linear(numbers: list[int], bond: float) -> Molecule:
    """Atoms on the x axis, ``bond`` Å apart, with hydrogens 1.06 Å beyond the two ends."""
    pos = [[-1.06, 0, 0]] + [[bond * k, 0, 0] for k in range(len(numbers))] + [[bond * (len(numbers) - 1) + 1.06, 0, 0]]
    return Molecule.from_atomic_numbers([1, *numbers, 1], np.array(pos))


def test_bond_orders_follow_edms_length_table() -> None:
    assert bond_orders(linear([6, 6], 1.20))[1, 2] == 3  # 120 pm < 120 + 3: triple (acetylene)
    assert bond_orders(linear([6, 6], 1.25))[1, 2] == 2  # not < 123, but < 134 + 5: double
    assert bond_orders(linear([6, 6], 1.50))[1, 2] == 1  # < 154 + 10: single
    assert bond_orders(linear([6, 6], 1.65))[1, 2] == 0  # ≥ 164 pm: no bond
    assert bond_orders(linear([8, 8], 1.20))[1, 2] == 2  # O has no triple bond in the table


def test_methane_and_acetylene_are_stable_a_stretched_molecule_is_not() -> None:
    assert stable_atoms(METHANE).all() and stable_atoms(linear([6, 6], 1.20)).all()
    stretched = stable_atoms(linear([6, 6], 1.50))  # single C-C with one H each: carbons short of valence 4
    assert stretched.tolist() == [True, False, False, True]


def test_validity_uses_rdkit_on_edms_bonds() -> None:
    assert molecule_smiles(METHANE) == "[H]C([H])([H])[H]"
    crowded = Molecule.from_atomic_numbers([6] + [1] * 5, np.vstack([np.zeros(3), 0.75 * np.eye(3), -0.75 * np.eye(3)[:2]]))
    assert molecule_smiles(crowded) is None  # five bonds on carbon
    metrics = molecule_metrics([METHANE, METHANE, crowded])
    assert metrics["validity"] == pytest.approx(2 / 3) and metrics["uniqueness"] == 0.5
    assert metrics["molecule_stability"] == pytest.approx(2 / 3) and metrics["num_molecules"] == 3


def test_unknown_elements_and_empty_sets_are_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"atomic number \[17\] are not among H, C, N, O, F"):
        Molecule.from_atomic_numbers([6, 17], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="No molecules to evaluate"):
        molecule_metrics([])
    (tmp_path / "empty.xyz").write_text("")
    with pytest.raises(ValueError, match="Cannot read molecules from"):
        read_molecules(str(tmp_path / "empty.xyz"))


@pytest.mark.skipif(not EDM_TEST.is_file(), reason="needs ../shared/data/qm9/edm_qm9_test.npz")
def test_qm9_test_molecules_give_edms_numbers_for_the_data() -> None:
    with np.load(EDM_TEST) as edm:
        counts, numbers, positions = edm["num_atoms"], edm["charges"], edm["positions"]
    molecules = [Molecule.from_atomic_numbers(numbers[k, : counts[k]], positions[k, : counts[k]]) for k in range(len(counts))]
    metrics = molecule_metrics(molecules)
    # EDM (Hoogeboom et al. 2022) reports for QM9 itself: molecule stability 95.2 %, validity 97.7 %.
    assert metrics["molecule_stability"] == pytest.approx(0.952, abs=0.001)
    assert metrics["validity"] == pytest.approx(0.977, abs=0.001)
    assert metrics["atom_stability"] > 0.99


def test_evaluate_molecules_reads_xyz_and_sdf_and_writes_json(tmp_path, capsys) -> None:
    from rdkit import Chem

    frames = [ase.Atoms(numbers=[6, 1, 1, 1, 1], positions=METHANE.pos), ase.Atoms(numbers=[1, 6, 6, 1],
              positions=linear([6, 6], 1.20).pos)]
    ase.io.write(tmp_path / "two.xyz", frames)
    assert main(["evaluate-molecules", str(tmp_path / "two.xyz"), "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["num_molecules"] == 2 and metrics["molecule_stability"] == 1.0
    molecule = Chem.AddHs(Chem.MolFromSmiles("C"))
    conformer = Chem.Conformer(5)
    for index, position in enumerate(METHANE.pos):
        conformer.SetAtomPosition(index, position.tolist())
    molecule.AddConformer(conformer)
    with Chem.SDWriter(str(tmp_path / "methane.sdf")) as writer:
        writer.write(molecule)
    assert main(["evaluate-molecules", str(tmp_path / "methane.sdf")]) == 0
    assert "molecule stability   100.00 %" in capsys.readouterr().out
    assert main(["evaluate-molecules", str(tmp_path / "missing.sdf")]) == 2
    assert "missing.sdf does not exist" in capsys.readouterr().err


def test_novelty_counts_distinct_valid_smiles_outside_the_training_set() -> None:
    acetylene = linear([6, 6], 1.20)
    metrics = molecule_metrics([METHANE, METHANE, acetylene], training_smiles={molecule_smiles(METHANE)})
    assert metrics["novelty"] == 0.5 and "novelty" not in molecule_metrics([METHANE])


def test_written_molecules_read_back_and_draw(tmp_path) -> None:
    molecules = [METHANE, linear([6, 6], 1.20)]
    for name in ("m.sdf", "m.xyz"):
        write_molecules(molecules, str(tmp_path / name))
        back = read_molecules(str(tmp_path / name))
        assert [m.types.tolist() for m in back] == [m.types.tolist() for m in molecules]
        assert all(np.allclose(a.pos, b.pos, atol=1e-4) for a, b in zip(back, molecules))
    draw_molecules(molecules, str(tmp_path / "grid.png"))
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_valence_errors_say_which_atoms_miss_their_valence_and_by_how_much(tmp_path, capsys) -> None:
    crowded = Molecule.from_atomic_numbers([6] + [1] * 5, np.vstack([np.zeros(3), 0.75 * np.eye(3), -0.75 * np.eye(3)[:2]]))
    molecules = [METHANE, linear([6, 6], 1.50), crowded]  # 5 + 4 + 6 atoms
    errors = valence_errors(molecules)
    # the stretched ethyne: two carbons 2 short; the crowded methane: a carbon 1 over (its H-H pairs are too far)
    assert errors == {"C-2": pytest.approx(2 / 15), "C+1": pytest.approx(1 / 15)}
    assert sum(errors.values()) == pytest.approx(1 - molecule_metrics(molecules)["atom_stability"])
    assert valence_errors([METHANE]) == {}
    ase.io.write(tmp_path / "three.xyz", [ase.Atoms(numbers=[(1, 6, 7, 8, 9)[t] for t in m.types], positions=m.pos)
                                          for m in molecules])
    assert main(["evaluate-molecules", str(tmp_path / "three.xyz"), "--details", "--json", str(tmp_path / "m.json")]) == 0
    assert "C-2 13.33  C+1 6.67" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["valence_errors"] == pytest.approx(errors)
