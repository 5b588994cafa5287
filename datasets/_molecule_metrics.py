r"""Quality of 3D molecules, exactly as EDM measures it (Hoogeboom et al., ICML 2022), so numbers compare.

Bonds come from interatomic distances alone: a pair of atoms is bonded with order 1 if its distance is
below the single-bond reference length plus 10 pm, order 2 if also below the double-bond length plus
5 pm, order 3 if also below the triple-bond length plus 3 pm (:data:`BOND_LENGTHS_PM`). An atom is
*stable* if its bond orders sum to its valence exactly (H 1, C 4, N 3, O 2, F 1); a molecule is stable
if all its atoms are. A molecule is *valid* if RDKit sanitises the molecule built with these bonds; its
SMILES is that of its largest fragment. *Uniqueness* is the fraction of distinct SMILES among the valid
molecules. On QM9's own test molecules these give 99.0 % atom and 95.2 % molecule stability, as EDM
reports for the data.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._rdkit import require_rdkit

ELEMENTS = ("H", "C", "N", "O", "F")
"""QM9's elements; :attr:`Molecule.types` indexes this tuple."""
ATOMIC_NUMBERS = (1, 6, 7, 8, 9)
VALENCES = (1, 4, 3, 2, 1)
"""The valence of each of :data:`ELEMENTS`: a stable atom's bond orders sum to it."""
BOND_MARGINS_PM = (10.0, 5.0, 3.0)
"""EDM's margins (pm) added to the reference lengths of bond orders 1, 2 and 3."""
BOND_LENGTHS_PM = {
    1: {"HH": 74, "HC": 109, "HN": 101, "HO": 96, "HF": 92, "CC": 154, "CN": 147, "CO": 143, "CF": 135,
        "NN": 145, "NO": 140, "NF": 136, "OO": 148, "OF": 142, "FF": 142},
    2: {"CC": 134, "CN": 129, "CO": 120, "NN": 125, "NO": 121, "OO": 121},
    3: {"CC": 120, "CN": 116, "CO": 113, "NN": 110},
}
"""EDM's reference bond lengths in pm, by bond order and element pair."""


def _thresholds() -> np.ndarray:
    """Distance thresholds ``[3, 5, 5]`` in Å: below ``[k, a, b]`` the pair has at least order ``k + 1``."""
    table = np.full((3, len(ELEMENTS), len(ELEMENTS)), -np.inf)
    for order, lengths in BOND_LENGTHS_PM.items():
        for pair, length in lengths.items():
            a, b = ELEMENTS.index(pair[0]), ELEMENTS.index(pair[1])
            table[order - 1, a, b] = table[order - 1, b, a] = (length + BOND_MARGINS_PM[order - 1]) / 100.0
    return table


_THRESHOLDS = _thresholds()


@dataclass
class Molecule:
    """A molecule as a generator gives it: element indices into :data:`ELEMENTS` ``[N]`` and positions ``[N, 3]`` in Å."""

    types: np.ndarray
    pos: np.ndarray

    @classmethod
    def from_atomic_numbers(cls, numbers: Sequence[int], pos: np.ndarray) -> "Molecule":
        """Raises ValueError for an element other than H, C, N, O, F."""
        unknown = sorted(set(int(z) for z in numbers) - set(ATOMIC_NUMBERS))
        if unknown:
            raise ValueError(f"element(s) with atomic number {unknown} are not among H, C, N, O, F (QM9's elements).")
        lookup = {z: index for index, z in enumerate(ATOMIC_NUMBERS)}
        return cls(np.array([lookup[int(z)] for z in numbers]), np.asarray(pos, dtype=np.float64))


def bond_orders(molecule: Molecule) -> np.ndarray:
    """EDM's bond orders ``[N, N]`` (0 to 3; 0 on the diagonal) from the interatomic distances.

    Example:
        >>> water = Molecule.from_atomic_numbers([8, 1, 1], np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
        >>> bond_orders(water).tolist()
        [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    """
    distance = np.linalg.norm(molecule.pos[:, None] - molecule.pos[None], axis=-1)  # [N, N]
    limits = _THRESHOLDS[:, molecule.types[:, None], molecule.types[None]]  # [3, N, N]
    orders = (distance[None] < limits).sum(axis=0)  # [N, N]
    np.fill_diagonal(orders, 0)
    return orders


def stable_atoms(molecule: Molecule) -> np.ndarray:
    """Whether each atom's bond orders sum to its valence ``[N]``."""
    return bond_orders(molecule).sum(axis=1) == np.asarray(VALENCES)[molecule.types]


def valence_errors(molecules: Sequence[Molecule]) -> dict[str, float]:
    """Where stability fails: the fraction of all atoms of each element that miss their valence by each amount.

    Keys are the element and the excess of bond orders over the valence, e.g. ``"C-1"`` for carbons one bond
    order short, ``"N+1"`` for nitrogens one over; sorted from the most to the least frequent. The values
    sum to ``1 − atom stability``.

    Example:
        >>> stretched = Molecule.from_atomic_numbers([1, 6, 6, 1], np.array([[-1.06, 0, 0], [0, 0, 0], [1.5, 0, 0], [2.56, 0, 0]]))
        >>> valence_errors([stretched])
        {'C-2': 0.5}
    """
    if not molecules:
        raise ValueError("No molecules to evaluate.")
    counts: dict[str, int] = {}
    num_atoms = 0
    for molecule in molecules:
        excess = bond_orders(molecule).sum(axis=1) - np.asarray(VALENCES)[molecule.types]  # [N]
        num_atoms += len(excess)
        for element, amount in zip(molecule.types[excess != 0], excess[excess != 0]):
            key = f"{ELEMENTS[element]}{int(amount):+d}"
            counts[key] = counts.get(key, 0) + 1
    return {key: count / num_atoms for key, count in sorted(counts.items(), key=lambda item: -item[1])}


def radius_of_gyration(molecule: Molecule) -> float:
    """RMS distance of the atoms from their centre (Å); a generator's exploded samples have a large one.

    Example:
        >>> radius_of_gyration(Molecule.from_atomic_numbers([1, 1], np.array([[0.0, 0, 0], [1.0, 0, 0]])))
        0.5
    """
    centred = molecule.pos - molecule.pos.mean(axis=0)
    return float(np.sqrt((centred**2).sum(axis=1).mean()))


def rdkit_molecule(molecule: Molecule) -> "object":
    """An RDKit ``RWMol`` with the atoms, EDM's bonds and the 3D positions (not sanitised).

    Raises:
        ImportError: if RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    require_rdkit("rdkit_molecule")
    from rdkit import Chem

    orders = bond_orders(molecule)
    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    mol = Chem.RWMol()
    for index in molecule.types:
        mol.AddAtom(Chem.Atom(ATOMIC_NUMBERS[int(index)]))
    for i, j in zip(*np.triu_indices(len(molecule.types), k=1)):
        if orders[i, j] > 0:
            mol.AddBond(int(i), int(j), kinds[int(orders[i, j])])
    conformer = Chem.Conformer(len(molecule.types))
    for index, position in enumerate(molecule.pos.tolist()):
        conformer.SetAtomPosition(index, position)
    mol.AddConformer(conformer)
    return mol


def molecule_smiles(molecule: Molecule) -> str | None:
    """SMILES of the largest fragment of the molecule built with EDM's bonds, or ``None`` if RDKit rejects it.

    Raises:
        ImportError: if RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    require_rdkit("molecule_smiles")
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # an invalid molecule is a result here, not an error to print
    mol = rdkit_molecule(molecule)
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several kinds (valence, kekulisation) for an invalid molecule
        return None
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    largest = max(fragments, default=mol, key=lambda fragment: fragment.GetNumAtoms())
    return Chem.MolToSmiles(largest)


def molecule_metrics(molecules: Sequence[Molecule], training_smiles: set[str] | None = None) -> dict[str, float]:
    """EDM's metrics of a set of molecules (fractions in [0, 1]).

    Args:
        molecules: the molecules.
        training_smiles: the SMILES of the training molecules built the same way
            (:func:`molecule_smiles`); with them, ``novelty`` is the fraction of the distinct valid SMILES
            not among them.

    Returns:
        ``atom_stability``, ``molecule_stability``, ``validity``, ``uniqueness`` (among the valid),
        ``valid_and_unique`` (distinct valid SMILES over all molecules), ``num_molecules`` and, with
        ``training_smiles``, ``novelty``.

    Raises:
        ValueError: if ``molecules`` is empty.
        ImportError: if RDKit (validity, uniqueness) is not installed (``pip install 'ponita[qm9]'``).
    """
    if not molecules:
        raise ValueError("No molecules to evaluate.")
    require_rdkit("molecule_metrics")
    stable = [stable_atoms(molecule) for molecule in molecules]
    smiles = [molecule_smiles(molecule) for molecule in molecules]
    valid = [item for item in smiles if item is not None]
    num_atoms = sum(len(flags) for flags in stable)
    metrics = {
        "atom_stability": sum(int(flags.sum()) for flags in stable) / num_atoms,
        "molecule_stability": sum(bool(flags.all()) for flags in stable) / len(molecules),
        "validity": len(valid) / len(molecules),
        "uniqueness": len(set(valid)) / len(valid) if valid else 0.0,
        "valid_and_unique": len(set(valid)) / len(molecules),
        "num_molecules": len(molecules),
    }
    if training_smiles is not None:
        distinct = set(valid)
        metrics["novelty"] = len(distinct - training_smiles) / len(distinct) if distinct else 0.0
    return metrics


def draw_molecules(molecules: Sequence[Molecule], path: str, per_row: int = 5, size: int = 250) -> None:
    """A PNG grid of the molecules (RDKit 2D depictions of EDM's bonds; unsanitisable ones drawn as built).

    Raises:
        ImportError: if RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    require_rdkit("draw_molecules")
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem, Draw

    RDLogger.DisableLog("rdApp.*")  # lone hydrogens of poor samples are drawn, not reported
    drawn = []
    for molecule in molecules:
        mol = rdkit_molecule(molecule).GetMol()
        mol.UpdatePropertyCache(strict=False)
        mol = Chem.RemoveHs(mol, sanitize=False)
        AllChem.Compute2DCoords(mol)
        drawn.append(mol)
    image = Draw.MolsToGridImage(drawn, molsPerRow=per_row, subImgSize=(size, size))
    image.save(str(path))


def read_molecules(path: str) -> list[Molecule]:
    """The molecules of an SDF file (RDKit, hydrogens kept, bonds ignored) or of any ASE-readable file
    (e.g. multi-frame XYZ); bonds are always recomputed from the distances, as EDM does.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file cannot be read, holds no molecule, or has an element other than H/C/N/O/F.
        ImportError: for an SDF file, if RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"Molecule file {file} does not exist (or is a folder).")
    if file.suffix.lower() == ".sdf":
        require_rdkit("reading SDF files")
    try:
        if file.suffix.lower() == ".sdf":
            from rdkit import Chem

            records = [m for m in Chem.SDMolSupplier(str(file), removeHs=False, sanitize=False) if m is not None]
            numbers_and_positions = [([a.GetAtomicNum() for a in m.GetAtoms()], m.GetConformer().GetPositions())
                                     for m in records if m.GetNumConformers()]
        else:
            import ase.io

            frames = ase.io.read(str(file), index=":")
            numbers_and_positions = [(frame.get_atomic_numbers(), frame.get_positions()) for frame in frames]
    except Exception as error:  # readers raise many kinds for a malformed file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"Cannot read molecules from {file}: {reason}") from None
    molecules = [Molecule.from_atomic_numbers(z, pos) for z, pos in numbers_and_positions if len(z) > 0]
    if not molecules:
        raise ValueError(f"{file} holds no molecule.")
    return molecules


def write_molecules(molecules: Sequence[Molecule], path: str) -> None:
    """Writes ``molecules`` to an SDF file (RDKit, EDM's bonds) or, for any other suffix, a multi-frame XYZ file.

    Raises:
        ImportError: for an SDF file, if RDKit is not installed (``pip install 'ponita[qm9]'``).
    """
    from pathlib import Path

    if Path(path).suffix.lower() == ".sdf":
        require_rdkit("writing SDF files")
        from rdkit import Chem

        with Chem.SDWriter(str(path)) as writer:
            writer.SetKekulize(False)
            for molecule in molecules:
                writer.write(rdkit_molecule(molecule))
    else:
        import ase
        import ase.io

        frames = [ase.Atoms(numbers=[ATOMIC_NUMBERS[int(t)] for t in m.types], positions=m.pos) for m in molecules]
        ase.io.write(str(path), frames, format="extxyz")
