"""Tests of ponita.datasets._statistics on synthetic frames with known answers."""

import pytest
import torch
from torch_geometric.data import Data

from ponita.datasets import fit_atomic_reference_energies, force_rms


def _frame(z: list[int], energy: float) -> Data:
    return Data(z=torch.tensor(z), energy=torch.tensor([energy], dtype=torch.float64))


def test_reference_energies_recover_known_values_for_varied_compositions() -> None:
    e0 = {1: -13.6, 6: -1030.0, 8: -2040.0}
    compositions = [[1, 1, 8], [6, 8, 8], [6, 1, 1, 1, 1], [6, 6, 8, 1, 1, 1, 1, 1, 1], [1, 1]]
    frames = [_frame(z, sum(e0[a] for a in z)) for z in compositions]
    fitted = fit_atomic_reference_energies(frames)
    assert list(fitted) == [1, 6, 8]
    for z, value in e0.items():
        assert fitted[z] == pytest.approx(value, abs=1e-9)


def test_reference_energies_single_composition_gives_minimum_norm_solution() -> None:
    z = [6, 6, 8, 1, 1, 1, 1, 1, 1]  # ethanol: counts C 2, O 1, H 6
    energies = [-100.0, -102.0, -104.0]
    fitted = fit_atomic_reference_energies([_frame(z, e) for e in energies])
    mean_energy = sum(energies) / len(energies)
    counts = {1: 6.0, 6: 2.0, 8: 1.0}
    squared_norm = sum(c**2 for c in counts.values())
    for element, count in counts.items():
        assert fitted[element] == pytest.approx(count * mean_energy / squared_norm, rel=1e-12)
    assert sum(fitted[a] for a in z) == pytest.approx(mean_energy, rel=1e-12)


def test_force_rms_matches_hand_computed_value() -> None:
    frames = [
        Data(forces=torch.tensor([[1.0, 2.0, 2.0]])),
        Data(forces=torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])),
    ]
    # squares sum to 9 + 0 + 25 = 34 over 9 components
    assert force_rms(frames) == pytest.approx((34.0 / 9.0) ** 0.5)


@pytest.mark.parametrize("statistic", [fit_atomic_reference_energies, force_rms])
def test_statistics_reject_empty_frames(statistic) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        statistic([])
