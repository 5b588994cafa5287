"""Test metrics of a potential: energy and force mean absolute errors, optionally rotation-averaged."""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from ponita.models import PonitaPotential
from ponita.geometry import random_rotation

from ._task import data_batches, model_device


def evaluate_potential(
    model: PonitaPotential,
    frames: Sequence[Data],
    batch_size: int = 50,
    rotations: int = 0,
    seed: int = 0,
) -> dict[str, float]:
    r"""Energy MAE (meV) and force MAE (meV/Å, over all components) of ``model`` on ``frames``.

    With ``rotations > 0`` the predictions are also averaged over that many random rotations of each
    molecule (forces rotated back), as in the PONITA paper's test protocol, and reported under separate
    keys: the grid of orientations makes the network only approximately equivariant.

    Args:
        model: the potential; evaluated in eval mode on its own device.
        frames: labelled frames (``z``, ``pos``, ``energy`` meV, ``forces`` meV/Å).
        batch_size: molecules per forward pass.
        rotations: number of random rotations to average over (0: none).
        seed: seed of the rotations.

    Returns:
        ``{"energy_mae_meV", "forces_mae_meV_per_A", "num_frames"}`` and, if ``rotations > 0``,
        ``"rotation_averaged_energy_mae_meV"``, ``"rotation_averaged_forces_mae_meV_per_A"`` and
        ``"rotations"``.
    """
    model.eval()
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    errors: dict[str, list[Tensor]] = {"energy": [], "forces": [], "energy_rot": [], "forces_rot": []}
    for _, batch in data_batches(frames, batch_size, device):
        energy, forces = _predict(model, batch)  # [G], [N, 3]
        errors["energy"].append((energy - batch.energy).abs())
        errors["forces"].append((forces - batch.forces).abs().flatten())
        if rotations > 0:
            energy_sum, forces_sum = torch.zeros_like(energy), torch.zeros_like(forces)
            for _ in range(rotations):
                matrices = torch.stack(
                    [random_rotation(3, generator, dtype=batch.pos.dtype) for _ in range(batch.num_graphs)]
                ).to(device)[batch.batch]  # [N, 3, 3]
                rotated = batch.clone()
                rotated.pos = torch.einsum("nij,nj->ni", matrices, batch.pos)  # [N, 3]
                energy_rotated, forces_rotated = _predict(model, rotated)
                energy_sum += energy_rotated
                forces_sum += torch.einsum("nji,nj->ni", matrices, forces_rotated)  # Rᵀ F: back to the frame
            errors["energy_rot"].append((energy_sum / rotations - batch.energy).abs())
            errors["forces_rot"].append((forces_sum / rotations - batch.forces).abs().flatten())
    metrics = {
        "energy_mae_meV": float(torch.cat(errors["energy"]).mean()),
        "forces_mae_meV_per_A": float(torch.cat(errors["forces"]).mean()),
        "num_frames": len(frames),
    }
    if rotations > 0:
        metrics["rotation_averaged_energy_mae_meV"] = float(torch.cat(errors["energy_rot"]).mean())
        metrics["rotation_averaged_forces_mae_meV_per_A"] = float(torch.cat(errors["forces_rot"]).mean())
        metrics["rotations"] = rotations
    return metrics


def _predict(model: PonitaPotential, batch: Batch) -> tuple[Tensor, Tensor]:
    energy, forces = model(batch)
    return energy.detach().double(), forces.detach().double()
