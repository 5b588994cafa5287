"""Training-set statistics that potentials take as constructor arguments (per-element energies, force RMS)."""

from collections.abc import Sequence

import torch
from torch_geometric.data import Data


def fit_atomic_reference_energies(frames: Sequence[Data]) -> dict[int, float]:
    r"""Fits one reference energy per element so that the sum over a frame's atoms approximates its energy.

    Solves the least-squares problem

    .. math::
        \min_{E_0} \sum_g \Big( E_g - \sum_z c_{g z} E_0[z] \Big)^2,

    where :math:`E_g` is the energy of frame :math:`g` and :math:`c_{g z}` the number of atoms of element
    :math:`z` in it. When the compositions do not span all elements the problem is rank deficient; this
    is always the case for rMD17, where every frame of a molecule has the same composition :math:`c`.
    The minimum-norm solution is then returned (``torch.linalg.lstsq`` with the SVD-based ``gelsd``
    driver), which for a single composition is :math:`E_0 = c \, \bar{E} / \lVert c \rVert^2`: the sum
    :math:`\sum_z c_z E_0[z]` equals the mean energy :math:`\bar{E}` exactly, but the individual values
    are not physical atomic energies. Only that sum matters to a model trained on one molecule.

    Args:
        frames: Frames with fields ``z`` ``[N]`` (atomic numbers) and ``energy`` ``[1]``.

    Returns:
        Reference energy per atomic number, in the unit of ``energy`` (meV for ponita loaders), sorted by
        atomic number.

    Raises:
        ValueError: If ``frames`` is empty.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> frames = [
        ...     Data(z=torch.tensor([1, 1]), energy=torch.tensor([-2.0])),
        ...     Data(z=torch.tensor([1, 8]), energy=torch.tensor([-11.0])),
        ... ]
        >>> {z: round(e, 6) for z, e in fit_atomic_reference_energies(frames).items()}
        {1: -1.0, 8: -10.0}
    """
    if len(frames) == 0:
        raise ValueError("fit_atomic_reference_energies needs at least one frame, got an empty sequence.")
    elements = torch.unique(torch.cat([frame.z for frame in frames])).cpu()  # [T]
    counts = torch.stack(
        [(frame.z.cpu().unsqueeze(-1) == elements).sum(dim=0) for frame in frames]
    ).to(torch.float64)  # [G, T]
    energies = torch.cat([frame.energy.cpu() for frame in frames]).to(torch.float64)  # [G]
    solution = torch.linalg.lstsq(counts, energies.unsqueeze(-1), driver="gelsd").solution  # [T, 1]
    return {int(z): float(e0) for z, e0 in zip(elements, solution.squeeze(-1))}


def force_rms(frames: Sequence[Data]) -> float:
    r"""Returns the root mean square of all force components, :math:`\sqrt{\langle F_{i\alpha}^2 \rangle}`.

    The mean runs over every atom :math:`i` of every frame and every Cartesian component :math:`\alpha`,
    so it is the usual scale for normalising force (and energy) targets.

    Args:
        frames: Frames with a ``forces`` field of shape ``[N, 3]``.

    Returns:
        The RMS force, in the unit of ``forces`` (meV/Å for ponita loaders).

    Raises:
        ValueError: If ``frames`` is empty.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> force_rms([Data(forces=torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]))])
        1.7320508075688772
    """
    if len(frames) == 0:
        raise ValueError("force_rms needs at least one frame, got an empty sequence.")
    forces = torch.cat([frame.forces.cpu() for frame in frames]).to(torch.float64)  # [N_total, 3]
    return float(forces.square().mean().sqrt())
