"""QM9 from qm9pack: splits, units checked by hand, atom features, caching, the missing-extra error, EDM's test split."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import ponita.datasets._qm9 as qm9_module
from ponita.datasets import (
    HARTREE_TO_MEV,
    QM9_ATOM_REFERENCES,
    QM9_TARGETS,
    QM9Molecules,
    load_qm9,
    process_qm9,
    qm9_split,
    read_qm9pack_rows,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="needs pip install 'ponita[qm9]'")
TARGETS = list(QM9_TARGETS)
EDM_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "qm9" / "edm_qm9_test.npz"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return read_qm9pack_rows()


@pytest.fixture(scope="module")
def first(rows):
    """The first 300 molecules of QM9 (methane, ammonia, water, acetylene, HCN, ...), processed."""
    return process_qm9(rows[:300])


def test_qm9pack_holds_all_130831_molecules_in_index_order(rows) -> None:
    indices = [int(row["Index"]) for row in rows]
    assert len(rows) == 130_831 and indices == sorted(indices) and indices[:3] == [1, 2, 3]


@pytest.mark.parametrize("scheme, sizes", [("dimenet", (110_000, 10_000, 10_831)), ("edm", (100_000, 17_748, 13_083))])
def test_splits_have_the_published_sizes_and_partition_the_molecules(scheme, sizes) -> None:
    split = qm9_split(scheme=scheme)
    assert tuple(len(split[name]) for name in ("train", "valid", "test")) == sizes
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(130_831))
    again = qm9_split(scheme=scheme)
    assert all(np.array_equal(split[name], again[name]) for name in split)


def test_dimenet_split_is_the_randomstate_42_permutation() -> None:
    perm = np.random.RandomState(42).permutation(130_831)
    split = qm9_split()
    assert np.array_equal(split["train"], perm[:110_000]) and np.array_equal(split["test"], perm[120_000:])


def test_methane_targets_in_literature_units_by_hand(first) -> None:
    methane = dict(zip(TARGETS, first.targets[0].tolist()))
    # QM9 lists for methane: U0 = -40.47893 Ha, HOMO = -0.3877 Ha, gap = 0.5048 Ha, alpha = 13.21 a0^3.
    atoms = QM9_ATOM_REFERENCES[6][0] + 4 * QM9_ATOM_REFERENCES[1][0]  # -37.846772 + 4 · (-0.500273) Ha
    assert methane["U0"] == pytest.approx((-40.47893 - atoms) * 27_211.386246, abs=1e-6)
    assert methane["U0"] == pytest.approx(-17_172.2, abs=0.1)  # about -17.17 eV of atomisation energy
    assert methane["homo"] == pytest.approx(-0.3877 * HARTREE_TO_MEV) and methane["gap"] == pytest.approx(13_736.3, abs=0.1)
    assert (methane["mu"], methane["alpha"], methane["Cv"]) == (0.0, 13.21, 6.469)


def test_water_dipole_is_in_debye(first) -> None:
    assert first.smiles[2] == "O" and first.targets[2, TARGETS.index("mu")] == pytest.approx(1.8511)


def test_atom_features_are_pygs_eleven(first) -> None:
    methane = first.molecule(0)
    carbon = methane.x[methane.z == 6][0]
    assert carbon.tolist() == [0, 1, 0, 0, 0, 6, 0, 0, 0, 1, 4]  # C, Z=6, sp3, four hydrogens
    assert (methane.x[methane.z == 1] == torch.tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0.0])).all()
    acetylene = first.molecule(3)
    assert first.smiles[3] == "C#C"
    assert (acetylene.x[acetylene.z == 6][:, 7:11] == torch.tensor([1, 0, 0, 1.0])).all()  # sp, one hydrogen
    assert first.smiles[49] == "N1C=CC=C1"  # pyrrole, written in Kekulé form: RDKit finds the aromatic ring
    pyrrole = first.molecule(49)
    ring = pyrrole.x[pyrrole.z > 1]
    assert (ring[:, 6] == 1).all() and (ring[:, 8] == 1).all()  # five aromatic sp2 ring atoms
    assert ring[ring[:, 5] == 7][0, 10] == 1  # the N-H


def test_bonds_join_atoms_of_the_same_molecule_in_both_directions(first) -> None:
    water = first.molecule(2)
    assert sorted(map(tuple, water.edge_index.t().tolist())) == [(0, 1), (0, 2), (1, 0), (2, 0)]
    assert first.perception and sum(first.perception.values()) == 300


def test_load_processes_once_then_reads_the_cache(rows, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(qm9_module, "read_qm9pack_rows", lambda: rows[:12])
    qm9 = load_qm9(tmp_path)
    assert len(qm9) == 12 and (tmp_path / "qm9_v1.pt").is_file()
    monkeypatch.setattr(qm9_module, "process_qm9", lambda *args: pytest.fail("the cache was not used"))
    again = load_qm9(tmp_path)
    assert torch.equal(again.pos, qm9.pos) and again.smiles == qm9.smiles
    (tmp_path / "qm9_v1.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="qm9_v1.pt is not a complete processed QM9 file; delete it"):
        load_qm9(tmp_path)


def test_a_missing_qm9pack_names_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install 'ponita\[qm9\]'"):
        qm9_module.qm9pack_data_dir()


@pytest.mark.slow
@pytest.mark.skipif(not EDM_TEST.is_file(), reason="needs ../shared/data/qm9/edm_qm9_test.npz")
def test_edm_test_split_equals_edms_processed_file() -> None:
    qm9 = load_qm9()
    rows = np.sort(qm9_split(scheme="edm")["test"])  # EDM stores its parts sorted
    with np.load(EDM_TEST) as edm:
        assert np.array_equal(qm9.index.numpy()[rows], edm["index"])
        for position, k in enumerate(rows):
            molecule = qm9.molecule(int(k))
            count = int(edm["num_atoms"][position])
            assert np.array_equal(molecule.z.numpy(), edm["charges"][position, :count])
            assert np.abs(molecule.pos.numpy() - edm["positions"][position, :count]).max() < 1e-6


def test_molecule_views_make_the_same_molecules_on_access_and_slice_lazily(first) -> None:
    rows = np.array([7, 2, 250, 3])
    view = QM9Molecules(first, rows, target="mu")
    assert len(view) == 4 and isinstance(view[1:3], QM9Molecules) and len(view[1:3]) == 2
    for item, row in zip(view, rows):
        expected = first.molecule(int(row), "mu")
        assert torch.equal(item.pos, expected.pos) and torch.equal(item.y, expected.y) and torch.equal(item.z, expected.z)
    atoms = QM9Molecules(first, rows, atoms_only=True)
    assert set(atoms[2].keys()) == {"z", "pos"} and atoms[2].pos.dtype == torch.float32
    assert torch.equal(atoms[2].pos, first.molecule(250).pos.float())
    assert atoms.sizes().tolist() == [int(first.molecule(int(row)).z.shape[0]) for row in rows]
    assert [m.z.shape[0] for m in atoms[1:]] == atoms.sizes()[1:].tolist()
