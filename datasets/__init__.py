"""Datasets: rMD17 and user files read by ASE for potentials, the charged N-body benchmark, QM9, EDM's molecule metrics, splits and statistics.

Every loader returns a list of ``torch_geometric.data.Data`` frames with ``z`` ``[N]`` (int64 atomic
numbers), ``pos`` ``[N, 3]`` (float64, Å), ``energy`` ``[1]`` (float64, meV) and ``forces`` ``[N, 3]``
(float64, meV/Å). Statistics that a model needs (per-element reference energies, force RMS) are computed
here and passed to the model's constructor.
"""

from ._ase_files import load_ase_file
from ._bundled_data import bundled_data_dir
from ._frame import MAX_ATOMIC_NUMBER
from ._molecule_metrics import (
    BOND_LENGTHS_PM,
    BOND_MARGINS_PM,
    ELEMENTS,
    VALENCES,
    Molecule,
    bond_orders,
    draw_molecules,
    molecule_metrics,
    molecule_smiles,
    rdkit_molecule,
    read_molecules,
    radius_of_gyration,
    stable_atoms,
    valence_errors,
    write_molecules,
)
from ._nbody import (
    NBODY_SPLITS,
    NBodySimulations,
    default_nbody_dir,
    generate_nbody,
    load_nbody,
    nbody_samples,
    simulate_charged,
    simulate_charged_reference,
    write_nbody,
)
from ._qm9 import (
    HARTREE_TO_MEV,
    QM9,
    QM9_ATOM_REFERENCES,
    QM9_FEATURES,
    QM9_TARGETS,
    QM9Molecules,
    default_qm9_dir,
    edm_training_smiles,
    load_qm9,
    process_qm9,
    qm9_split,
    qm9_split_sizes,
    qm9pack_data_dir,
    read_qm9pack_rows,
)
from ._rmd17 import RMD17_MOLECULES, RMD17_URL, download_rmd17, load_rmd17
from ._statistics import fit_atomic_reference_energies, force_rms
from ._train_val_split import train_val_split
from ._units import ENERGY_UNITS_TO_MEV, EV_TO_MEV, KCAL_PER_MOL_TO_MEV

__all__ = [
    "BOND_LENGTHS_PM",
    "BOND_MARGINS_PM",
    "ELEMENTS",
    "ENERGY_UNITS_TO_MEV",
    "EV_TO_MEV",
    "HARTREE_TO_MEV",
    "KCAL_PER_MOL_TO_MEV",
    "MAX_ATOMIC_NUMBER",
    "Molecule",
    "NBODY_SPLITS",
    "NBodySimulations",
    "QM9",
    "QM9_ATOM_REFERENCES",
    "QM9_FEATURES",
    "QM9_TARGETS",
    "QM9Molecules",
    "RMD17_MOLECULES",
    "RMD17_URL",
    "VALENCES",
    "bond_orders",
    "bundled_data_dir",
    "default_nbody_dir",
    "default_qm9_dir",
    "draw_molecules",
    "edm_training_smiles",
    "download_rmd17",
    "fit_atomic_reference_energies",
    "force_rms",
    "generate_nbody",
    "load_ase_file",
    "load_nbody",
    "load_qm9",
    "load_rmd17",
    "molecule_metrics",
    "molecule_smiles",
    "nbody_samples",
    "process_qm9",
    "qm9_split",
    "qm9_split_sizes",
    "qm9pack_data_dir",
    "rdkit_molecule",
    "read_molecules",
    "read_qm9pack_rows",
    "simulate_charged",
    "simulate_charged_reference",
    "radius_of_gyration",
    "stable_atoms",
    "valence_errors",
    "train_val_split",
    "write_molecules",
    "write_nbody",
]
