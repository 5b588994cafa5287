"""User data for interatomic potentials: any ASE-readable file with energies and forces."""

import logging
from pathlib import Path

import ase.io
import numpy as np
from torch_geometric.data import Data

from ._frame import make_frame
from ._units import ENERGY_UNITS_TO_MEV

logger = logging.getLogger(__name__)


def load_ase_file(
    path: str | Path,
    *,
    energy_unit: str = "eV",
    index: str | int = ":",
    file_format: str | None = None,
) -> list[Data]:
    """Reads labelled frames from any file ASE can read (extxyz, ASE trajectory, ...), in meV and meV/Å.

    Energies and forces come from the single-point calculator that ``ase.io.read`` attaches to each frame
    (for extxyz: the ``energy=`` key of the comment line and the ``forces`` columns). Positions must be in Å;
    forces are taken to be in ``energy_unit`` per Å.

    Args:
        path: The file to read.
        energy_unit: The unit of the stored energies: ``"eV"``, ``"meV"`` or ``"kcal/mol"``.
        index: Which frames to read, in ``ase.io.read`` syntax: ``":"`` for all, ``"0:100"``, or an int.
        file_format: The ASE format name (e.g. ``"extxyz"``); ``None`` guesses it from the file name.

    Returns:
        One ``Data`` per frame with fields ``z`` ``[N]`` (int64), ``pos`` ``[N, 3]`` (float64, Å), ``energy``
        ``[1]`` (float64, meV) and ``forces`` ``[N, 3]`` (float64, meV/Å).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``energy_unit`` is unknown, the file has no frames, or a frame lacks an energy or
            forces, has non-finite values, or is periodic.

    Example:
        >>> import tempfile
        >>> from ase import Atoms
        >>> from ase.calculators.singlepoint import SinglePointCalculator
        >>> water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        >>> water.calc = SinglePointCalculator(water, energy=-14.2, forces=[[0.1, 0, 0], [-0.1, 0, 0], [0, 0, 0]])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     ase.io.write(f"{folder}/train.extxyz", [water])
        ...     frames = load_ase_file(f"{folder}/train.extxyz", energy_unit="eV")
        >>> frames[0].z.tolist(), frames[0].energy, frames[0].forces[0]  # in meV and meV/Å
        ([8, 1, 1], tensor([-14200.], dtype=torch.float64), tensor([100.,   0.,   0.], dtype=torch.float64))
    """
    if energy_unit not in ENERGY_UNITS_TO_MEV:
        raise ValueError(f"Unknown energy_unit {energy_unit!r}; choose one of {', '.join(ENERGY_UNITS_TO_MEV)}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}. Pass the path of an ASE-readable file (e.g. extxyz).")
    to_mev = ENERGY_UNITS_TO_MEV[energy_unit]
    atoms_list = ase.io.read(path, index=index, format=file_format)
    if not isinstance(atoms_list, list):
        atoms_list = [atoms_list]
    if not atoms_list:
        raise ValueError(f"{path} holds no frames for index={index!r}.")
    frames = []
    for frame_index, atoms in enumerate(atoms_list):
        results = atoms.calc.results if atoms.calc is not None else {}
        missing = [key for key in ("energy", "forces") if key not in results]
        if missing:
            raise ValueError(
                f"{path}, frame {frame_index}: no {' or '.join(missing)} found. Every frame needs a total energy "
                "and per-atom forces; in extxyz write them as 'energy=...' in the comment line and a 'forces' "
                "column (ase.io.write does this for Atoms with a SinglePointCalculator)."
            )
        if atoms.pbc.any():
            raise ValueError(
                f"{path}, frame {frame_index}: periodic boundary conditions {atoms.pbc.tolist()} are set, but "
                "ponita's potentials treat each frame as an isolated molecule. Set pbc=False (e.g. pbc=\"F F F\" "
                "in extxyz) if the cell is irrelevant."
            )
        energy = float(atoms.get_potential_energy()) * to_mev
        forces = np.asarray(atoms.get_forces(), dtype=np.float64) * to_mev  # [N, 3]
        positions = atoms.get_positions()  # [N, 3]
        if not (np.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(positions))):
            raise ValueError(f"{path}, frame {frame_index}: energy, forces or positions contain NaN or inf.")
        frames.append(make_frame(atoms.get_atomic_numbers(), positions, energy, forces))
    logger.info("Loaded %d frames from %s (energies in %s, converted to meV)", len(frames), path, energy_unit)
    return frames
