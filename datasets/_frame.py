"""One labelled frame of a molecular trajectory as a torch_geometric ``Data`` object."""

import numpy as np
import torch
from torch_geometric.data import Data

MAX_ATOMIC_NUMBER = 118
"""The largest atomic number of the periodic table (oganesson): a frame's ``z`` lies in 1 to 118."""


def make_frame(
    atomic_numbers: np.ndarray,
    positions: np.ndarray,
    energy: float,
    forces: np.ndarray,
) -> Data:
    """Builds the ``Data`` object that every ponita dataset loader returns for one frame.

    The caller has already converted the labels to meV and meV/Å and checked the shapes.

    Args:
        atomic_numbers: Atomic numbers, shape ``[N]``.
        positions: Cartesian positions in Å, shape ``[N, 3]``.
        energy: Total energy in meV.
        forces: Forces (``-dE/dx``) in meV/Å, shape ``[N, 3]``.

    Returns:
        A ``Data`` with fields ``z`` (``[N]``, int64), ``pos`` (``[N, 3]``, float64), ``energy``
        (``[1]``, float64) and ``forces`` (``[N, 3]``, float64).

    Example:
        >>> import numpy as np
        >>> frame = make_frame(np.array([1, 1]), np.zeros((2, 3)), -1.5, np.zeros((2, 3)))
        >>> frame.z.tolist(), frame.energy.tolist(), tuple(frame.forces.shape)
        ([1, 1], [-1.5], (2, 3))
    """
    z = torch.as_tensor(np.asarray(atomic_numbers), dtype=torch.long)  # [N]
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.float64)  # [N, 3]
    energy_tensor = torch.tensor([energy], dtype=torch.float64)  # [1]
    forces_tensor = torch.as_tensor(np.asarray(forces), dtype=torch.float64)  # [N, 3]
    return Data(z=z, pos=pos, energy=energy_tensor, forces=forces_tensor)
