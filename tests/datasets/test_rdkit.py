"""RDKit is optional: without it (the ``no_rdkit`` fixture) the molecule functions that need it say what to
install, and the rest still work."""

import numpy as np
import pytest

from ponita.datasets import (
    Molecule,
    draw_molecules,
    load_qm9,
    molecule_metrics,
    molecule_smiles,
    rdkit_molecule,
    read_molecules,
    stable_atoms,
    write_molecules,
)

WATER = Molecule.from_atomic_numbers([8, 1, 1], np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
INSTALL = r"needs RDKit, which is not installed: pip install 'ponita\[qm9\]' \(or pip install rdkit\)\."


@pytest.mark.usefixtures("no_rdkit")
def test_molecule_metrics_without_rdkit_says_what_to_install() -> None:
    with pytest.raises(ImportError, match=f"^molecule_metrics {INSTALL}$"):
        molecule_metrics([WATER])


@pytest.mark.usefixtures("no_rdkit")
def test_every_function_that_needs_rdkit_says_so(tmp_path) -> None:
    (tmp_path / "in.sdf").write_text("")
    calls = {
        "rdkit_molecule": lambda: rdkit_molecule(WATER),
        "molecule_smiles": lambda: molecule_smiles(WATER),
        "draw_molecules": lambda: draw_molecules([WATER], str(tmp_path / "grid.png")),
        "writing SDF files": lambda: write_molecules([WATER], str(tmp_path / "out.sdf")),
        "reading SDF files": lambda: read_molecules(str(tmp_path / "in.sdf")),
        "Processing QM9": lambda: load_qm9(tmp_path / "qm9"),
    }
    for feature, call in calls.items():
        with pytest.raises(ImportError, match=f"^{feature} {INSTALL}$"):
            call()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.sdf"]  # nothing written


@pytest.mark.usefixtures("no_rdkit")
def test_stability_and_xyz_files_work_without_rdkit(tmp_path) -> None:
    assert stable_atoms(WATER).all()
    write_molecules([WATER, WATER], str(tmp_path / "water.xyz"))
    molecules = read_molecules(str(tmp_path / "water.xyz"))
    assert len(molecules) == 2 and np.allclose(molecules[0].pos, WATER.pos)
