r"""QM9 (Ramakrishnan et al., Sci. Data 1, 140022, 2014) from the ``qm9pack`` package, processed once and cached.

``qm9pack`` (PyPI, by QM9's first author; ``pip install 'ponita[qm9]'``) ships the 130,831 molecules that
remain after removing the 3,054 "uncharacterized" ones, with B3LYP/6-31G(2df,p) geometries and all
properties, as CSV files. We read the files directly (the package needs nothing at run time), sort the
rows by QM9's ``Index`` (the order of the original ``dsgdb9nsd_*.xyz`` files, which is also the order
of PyG's QM9), and cache the processed tensors in ``~/.cache/ponita/qm9``.

Targets are converted to the units of the literature tables (:data:`QM9_TARGETS`): μ in D, α in
:math:`a_0^3`, orbital energies and ZPVE in meV, :math:`\langle R^2\rangle` in :math:`a_0^2`, c_v in
cal/(mol K), and :math:`U_0, U, H, G` as atomisation energies in meV: the molecule's energy minus the
energies of its free atoms, from the atomic reference table that QM9 publishes (``atomref.txt`` of the
QM9 figshare record, :data:`QM9_ATOM_REFERENCES`; PyG's QM9 uses the same numbers).

Per-atom input features are PyG's eleven (:data:`QM9_FEATURES`): one-hot H/C/N/O/F, atomic number,
aromatic, sp/sp2/sp3 hybridisation, number of bonded hydrogens. Their chemistry comes from the
molecule's SMILES (RDKit), whose atoms are matched onto the geometry's atoms through the covalent
connectivity of the geometry; bond perception from the geometry alone (RDKit's ``DetermineBonds``) is
run as a check and its agreement with the SMILES is recorded (see :class:`QM9`'s ``perception``).
"""

import csv
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from ._progress import log_progress
from ._rdkit import require_rdkit

logger = logging.getLogger(__name__)


QM9_NUM_MOLECULES = 130_831
HARTREE_TO_MEV = 27_211.386246  # as PyG's HAR2EV · 1000
QM9_ELEMENTS = (1, 6, 7, 8, 9)
QM9_ATOM_REFERENCES = {  # Hartree; atomref.txt of QM9: U(0 K), U(298.15 K), H(298.15 K), G(298.15 K)
    1: (-0.500273, -0.498857, -0.497912, -0.510927),
    6: (-37.846772, -37.845355, -37.844411, -37.861317),
    7: (-54.583861, -54.582445, -54.581501, -54.598897),
    8: (-75.064579, -75.063162, -75.062219, -75.079532),
    9: (-99.718730, -99.717314, -99.716370, -99.733544),
}
QM9_TARGETS = {  # name: (CSV column, factor to the unit, unit, column of QM9_ATOM_REFERENCES or None)
    "mu": ("Dipole_debye", 1.0, "D", None),
    "alpha": ("Polarizability_bohr3", 1.0, "a0^3", None),
    "homo": ("HOMO_au", HARTREE_TO_MEV, "meV", None),
    "lumo": ("LUMO_au", HARTREE_TO_MEV, "meV", None),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_MEV, "meV", None),
    "r2": ("R2_bohr2", 1.0, "a0^2", None),
    "zpve": ("ZPVE_au", HARTREE_TO_MEV, "meV", None),
    "U0": ("InternalEnergy_0K_au", HARTREE_TO_MEV, "meV", 0),
    "U": ("InternalEnergy_298K_au", HARTREE_TO_MEV, "meV", 1),
    "H": ("Enthalphy_298K_au", HARTREE_TO_MEV, "meV", 2),
    "G": ("GibbsFreeEnergy_298K_au", HARTREE_TO_MEV, "meV", 3),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/mol/K", None),
}
"""The twelve regression targets: CSV column, conversion factor, unit, atomisation reference (if any)."""
QM9_FEATURES = ("H", "C", "N", "O", "F", "atomic_number", "aromatic", "sp", "sp2", "sp3", "num_hs")
QM9_SPLITS = {  # name: (seed, train, valid); the test set is the rest
    "dimenet": (42, 110_000, 10_000),  # PONITA / DimeNet regression split
    "edm": (0, 100_000, 17_748),  # EDM generation split (13,083 test molecules)
}
_FILE_VERSION = 1


@dataclass
class QM9:
    """All of QM9, processed: molecules in ``Index`` order, atoms concatenated.

    Attributes:
        index: QM9's ``Index`` (1 … 133,885) of each molecule ``[M]``.
        ptr: start of each molecule's atoms ``[M + 1]``.
        z: atomic numbers ``[A]``.
        pos: positions in Å ``[A, 3]`` (float64).
        features: PyG's eleven atom features ``[A, 11]`` (:data:`QM9_FEATURES`).
        bonds: bonds ``[2, B]`` (atom indices within each molecule, both directions) and their molecule
            starts ``bond_ptr`` ``[M + 1]``.
        targets: ``[M, 12]`` in the order and units of :data:`QM9_TARGETS`.
        smiles: the SMILES of each molecule.
        perception: how many molecules had each outcome ``"<check>/<source>"`` of the bond-perception check
            and of the source of their features (see ``_chemistry``).
    """

    index: Tensor
    ptr: Tensor
    z: Tensor
    pos: Tensor
    features: Tensor
    bonds: Tensor
    bond_ptr: Tensor
    targets: Tensor
    smiles: list[str]
    perception: dict[str, int]

    def __len__(self) -> int:
        return self.index.shape[0]

    def molecule(self, k: int, target: str | None = None) -> Data:
        """Molecule ``k`` as ``Data(z, pos, x, edge_index, y)``; ``y`` ``[1, 12]`` or ``[1]`` for one ``target``."""
        atoms = slice(int(self.ptr[k]), int(self.ptr[k + 1]))
        bonds = self.bonds[:, int(self.bond_ptr[k]) : int(self.bond_ptr[k + 1])]
        y = self.targets[k : k + 1]
        if target is not None:
            y = y[:, list(QM9_TARGETS).index(target)]
        return Data(z=self.z[atoms].long(), pos=self.pos[atoms], x=self.features[atoms], edge_index=bonds.long(),
                    y=y, index=int(self.index[k]))


class QM9Molecules(Sequence[Data]):
    """Molecules ``rows`` of a processed :class:`QM9` as a sequence of ``Data``, each made when it is accessed.

    The atoms stay in QM9's concatenated tensors (about 40 bytes per atom), instead of one Python object per
    molecule (≈ 40 kB each: ≈ 4 GB for EDM's 100,000 training molecules). Slices are views too.

    Args:
        qm9: the processed QM9.
        rows: row numbers (e.g. a part of :func:`qm9_split`).
        target: the regression target of ``y`` (all twelve if ``None``); ignored with ``atoms_only``.
        atoms_only: make ``Data(z, pos)`` with float32 positions (generation), not :meth:`QM9.molecule`.

    Example:
        >>> qm9 = load_qm9()  # doctest: +SKIP
        >>> train = QM9Molecules(qm9, qm9_split(len(qm9), "edm")["train"], atoms_only=True)  # doctest: +SKIP
    """

    def __init__(self, qm9: QM9, rows: np.ndarray | Sequence[int], target: str | None = None,
                 atoms_only: bool = False) -> None:
        self.qm9, self.rows = qm9, np.asarray(rows, dtype=np.int64)
        self.target, self.atoms_only = target, atoms_only

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int | slice) -> "Data | QM9Molecules":
        if isinstance(item, slice):
            return QM9Molecules(self.qm9, self.rows[item], self.target, self.atoms_only)
        k = int(self.rows[item])
        if not self.atoms_only:
            return self.qm9.molecule(k, self.target)
        start, end = int(self.qm9.ptr[k]), int(self.qm9.ptr[k + 1])
        return Data(z=self.qm9.z[start:end].long(), pos=self.qm9.pos[start:end].float())

    def sizes(self) -> np.ndarray:
        """The number of atoms of each molecule ``[len(self)]``, without making the molecules."""
        ptr = self.qm9.ptr.numpy()
        return ptr[self.rows + 1] - ptr[self.rows]


def qm9_split(num_molecules: int = QM9_NUM_MOLECULES, scheme: str = "dimenet") -> dict[str, np.ndarray]:
    """Row numbers (in ``Index`` order) of the train / valid / test molecules of a published split.

    ``"dimenet"``: ``np.random.RandomState(42).permutation(n)``, 110,000 / 10,000 / the rest (PONITA and
    DimeNet); ``"edm"``: ``np.random.seed(0); np.random.permutation(n)``, 100,000 / 17,748 / 13,083 (EDM,
    which stores each part sorted). Each part is in permutation order, so its first ``k`` rows are a
    random subset (the molecules' ``Index`` order runs from small to large molecules).

    Example:
        >>> {name: len(rows) for name, rows in qm9_split().items()}
        {'train': 110000, 'valid': 10000, 'test': 10831}
    """
    if scheme not in QM9_SPLITS:
        raise ValueError(f"Unknown QM9 split {scheme!r}; choose one of {', '.join(QM9_SPLITS)}.")
    seed, num_train, num_valid = QM9_SPLITS[scheme]
    perm = np.random.RandomState(seed).permutation(num_molecules)
    return {"train": perm[:num_train], "valid": perm[num_train : num_train + num_valid],
            "test": perm[num_train + num_valid :]}


def qm9_split_sizes(scheme: str = "dimenet", num_molecules: int = QM9_NUM_MOLECULES) -> dict[str, int]:
    """The number of molecules of each part of a published split (:func:`qm9_split`), without loading QM9.

    Example:
        >>> qm9_split_sizes("edm")
        {'train': 100000, 'valid': 17748, 'test': 13083}
    """
    if scheme not in QM9_SPLITS:
        raise ValueError(f"Unknown QM9 split {scheme!r}; choose one of {', '.join(QM9_SPLITS)}.")
    _, num_train, num_valid = QM9_SPLITS[scheme]
    return {"train": num_train, "valid": num_valid, "test": num_molecules - num_train - num_valid}


def qm9pack_data_dir() -> Path:
    """The folder of ``qm9pack``'s CSV files.

    Raises:
        ValueError: naming the optional extra, if ``qm9pack`` is not installed.
    """
    spec = importlib.util.find_spec("qm9pack")  # located without importing it (it imports pandas)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("QM9 needs the qm9pack package: pip install 'ponita[qm9]' (or pip install qm9pack).")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def default_qm9_dir() -> Path:
    """Where processed QM9 is cached: ``$XDG_CACHE_HOME/ponita/qm9`` (``~/.cache/ponita/qm9``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ponita" / "qm9"


def load_qm9(cache_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> QM9:
    """All of QM9, processed on first use (about two minutes) and cached in ``cache_dir``.

    Raises:
        ValueError: if ``qm9pack`` is missing, or the cache file is damaged (delete it to process again).
        ImportError: if QM9 must be processed and RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    path = Path(cache_dir or default_qm9_dir()) / f"qm9_v{_FILE_VERSION}.pt"
    if not path.is_file():
        require_rdkit("Processing QM9")
        logger.warning("Processing QM9 from qm9pack into %s (about two minutes, once; `ponita data qm9` does it "
                       "explicitly).", path)
        qm9 = process_qm9(read_qm9pack_rows(), progress or log_progress(logger, "molecules"))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(qm9.__dict__, partial)
        partial.replace(path)
        return qm9
    try:
        return QM9(**torch.load(path, weights_only=True))
    except Exception:  # any unpickling or missing-field error means a damaged cache
        raise ValueError(f"{path} is not a complete processed QM9 file; delete it and it is processed again.") from None


def read_qm9pack_rows(data_dir: Path | None = None) -> list[dict[str, str]]:
    """The rows of qm9pack's CSV files (with the polarisability columns), sorted by ``Index``."""
    folder = data_dir or qm9pack_data_dir()
    csv.field_size_limit(1 << 30)
    rows: list[dict[str, str]] = []
    for part in ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv"):
        with open(folder / part, newline="") as file:
            rows.extend(csv.DictReader(file))
    rows.sort(key=lambda row: int(row["Index"]))
    return rows


def process_qm9(rows: list[dict[str, str]], progress: Callable[[int, int], None] | None = None) -> QM9:
    """Parses coordinates, converts targets and derives atom features and bonds (see the module docstring).

    Raises:
        ImportError: if RDKit (the atom features and bonds) is not installed (``pip install 'ponita[qm9]'``).
    """
    require_rdkit("Processing QM9")
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    index, ptr, bond_ptr = [], [0], [0]
    z_all, pos_all, features_all, bonds_all, targets, smiles = [], [], [], [], [], []
    perception: dict[str, int] = {}
    for k, row in enumerate(rows):
        elements = [item.strip().strip("'") for item in row["Elements"].strip("[]").split(",")]
        pos = _numbers(row["XYZ_Ang"]).reshape(-1, 3)  # [N, 3]
        z = np.array([_ATOMIC_NUMBERS[element] for element in elements])  # [N]
        features, bonds, verdict = _chemistry(elements, pos, row["SMILES"])
        perception[verdict] = perception.get(verdict, 0) + 1
        index.append(int(row["Index"]))
        ptr.append(ptr[-1] + len(z))
        bond_ptr.append(bond_ptr[-1] + bonds.shape[1])
        z_all.append(z)
        pos_all.append(pos)
        features_all.append(features)
        bonds_all.append(bonds)
        targets.append([_target(row, name, z) for name in QM9_TARGETS])
        smiles.append(row["SMILES"])
        if progress is not None and ((k + 1) % 1000 == 0 or k + 1 == len(rows)):
            progress(k + 1, len(rows))
    return QM9(
        index=torch.tensor(index), ptr=torch.tensor(ptr), z=torch.from_numpy(np.concatenate(z_all)).to(torch.uint8),
        pos=torch.from_numpy(np.concatenate(pos_all)), features=torch.from_numpy(np.concatenate(features_all)),
        bonds=torch.from_numpy(np.concatenate(bonds_all, axis=1)).to(torch.int16), bond_ptr=torch.tensor(bond_ptr),
        targets=torch.tensor(targets, dtype=torch.float64), smiles=smiles, perception=perception,
    )


_ATOMIC_NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


def _numbers(text: str) -> np.ndarray:
    """Floats of a nested list written as text (QM9 writes some exponents as ``*^``)."""
    return np.array([float(item.replace("*^", "e")) for item in text.replace("[", "").replace("]", "").split(",")])


def _target(row: dict[str, str], name: str, z: np.ndarray) -> float:
    column, factor, _, reference = QM9_TARGETS[name]
    value = float(row[column].replace("*^", "e"))
    if reference is not None:
        value -= sum(QM9_ATOM_REFERENCES[int(number)][reference] for number in z)
    return value * factor


def _chemistry(elements: list[str], pos: np.ndarray, smiles: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Atom features ``[N, 11]`` and bonds ``[2, 2B]`` in the geometry's atom order, and ``"<check>/<source>"``:
    how bond perception from the geometry compares with the SMILES (``agree``, ``disagree``, ``failed``) and
    where the features come from (``smiles``; ``geometry`` when the SMILES graph does not fit the geometry's
    connectivity; ``connectivity`` when neither gives bond orders)."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    block = f"{len(elements)}\n\n" + "\n".join(f"{e} {x:.10f} {y:.10f} {w:.10f}" for e, (x, y, w) in zip(elements, pos))
    reference = Chem.AddHs(Chem.MolFromSmiles(smiles))
    verdict = "failed"
    perceived = Chem.MolFromXYZBlock(block)
    try:
        rdDetermineBonds.DetermineBonds(perceived, charge=Chem.GetFormalCharge(reference))
        verdict = "agree" if _plain_smiles(perceived) == _plain_smiles(reference) else "disagree"
    except Exception:  # RDKit raises ValueError or RuntimeError when no valid bond orders exist
        pass
    connectivity = Chem.MolFromXYZBlock(block)
    rdDetermineBonds.DetermineConnectivity(connectivity)
    pattern = Chem.RWMol(reference)
    for bond in pattern.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in pattern.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
    match = connectivity.GetSubstructMatch(pattern)  # match[i]: the geometry atom of SMILES atom i
    if len(match) == len(elements):
        source = "smiles"
    elif verdict != "failed":  # the relaxed geometry is another molecule than the SMILES: trust the geometry
        reference, match, source = perceived, tuple(range(len(elements))), "geometry"
    else:  # no bond orders at all: connectivity only (no aromaticity or hybridisation)
        reference, match, source = connectivity, tuple(range(len(elements))), "connectivity"
    hybridisations = (Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3)
    features = np.zeros((len(elements), len(QM9_FEATURES)), dtype=np.float32)
    for atom in reference.GetAtoms():
        row = features[match[atom.GetIdx()]]
        row[QM9_ELEMENTS.index(atom.GetAtomicNum())] = 1.0
        row[5] = atom.GetAtomicNum()
        row[6] = float(atom.GetIsAromatic())
        row[7:10] = [float(atom.GetHybridization() == kind) for kind in hybridisations]
        row[10] = sum(neighbour.GetAtomicNum() == 1 for neighbour in atom.GetNeighbors())
    pairs = [(match[b.GetBeginAtomIdx()], match[b.GetEndAtomIdx()]) for b in reference.GetBonds()]
    bonds = np.array([[i for i, j in pairs] + [j for i, j in pairs], [j for i, j in pairs] + [i for i, j in pairs]],
                     dtype=np.int64).reshape(2, -1)
    return features, bonds, f"{verdict}/{source}"


def _plain_smiles(molecule: object) -> str:
    """Canonical SMILES without stereochemistry or explicit hydrogens."""
    from rdkit import Chem

    plain = Chem.MolToSmiles(Chem.RemoveHs(molecule), isomericSmiles=False)
    return Chem.MolToSmiles(Chem.MolFromSmiles(plain), isomericSmiles=False)


def edm_training_smiles(cache_dir: str | Path | None = None) -> set[str]:
    """SMILES of EDM's 100,000 QM9 training molecules, built from their geometry as a generator's molecules are
    (:func:`ponita.datasets.molecule_smiles`), for the novelty metric; computed once (≈ 1 min) and cached."""
    from ._molecule_metrics import Molecule, molecule_smiles

    folder = Path(cache_dir or default_qm9_dir())
    path = folder / f"edm_train_smiles_v{_FILE_VERSION}.txt"
    if path.is_file():
        return set(path.read_text().split())
    qm9 = load_qm9(folder)
    rows = qm9_split(len(qm9), "edm")["train"]
    smiles = set()
    for row in rows.tolist():
        atoms = slice(int(qm9.ptr[row]), int(qm9.ptr[row + 1]))
        item = molecule_smiles(Molecule.from_atomic_numbers(qm9.z[atoms].tolist(), qm9.pos[atoms].numpy()))
        if item is not None:
            smiles.add(item)
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(sorted(smiles)))
    partial.replace(path)
    return smiles
