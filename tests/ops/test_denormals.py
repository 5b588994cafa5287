"""flush_denormals: the CPU's flush-to-zero mode for a computation, restored afterwards."""

import numpy as np
import torch
from ase import Atoms

from ponita.datasets import load_rmd17
from ponita.models import PonitaCalculator, PonitaPotential
from ponita.ops import denormals_flushed, flush_denormals

DENORMAL = 1e-39  # below float32's smallest normal number, 1.18e-38


def test_denormals_are_flushed_inside_and_kept_outside() -> None:
    assert not denormals_flushed()
    assert float(torch.tensor([DENORMAL]) * 1.0) > 0  # kept: PyTorch's default
    with flush_denormals():
        assert denormals_flushed()
        assert float(torch.tensor([DENORMAL]) * 1.0) == 0
        assert float(torch.tensor([2.0]) * 3.0) == 6.0  # normal numbers untouched
    assert not denormals_flushed()
    assert float(torch.tensor([DENORMAL]) * 1.0) > 0


def test_the_previous_mode_is_restored_also_after_an_error_and_when_nested() -> None:
    try:
        with flush_denormals():
            with flush_denormals(False):
                assert not denormals_flushed()
            assert denormals_flushed()
            raise RuntimeError
    except RuntimeError:
        pass
    assert not denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert denormals_flushed()  # a user's own choice survives
    finally:
        torch.set_flush_denormal(False)


def test_calculator_results_do_not_depend_on_flushing() -> None:
    torch.manual_seed(0)
    model = PonitaPotential([1, 6, 8], {1: 0.0, 6: 0.0, 8: 0.0}, 1000.0, hidden_dim=8, num_layers=2, num_ori=4)
    frame = load_rmd17("ethanol", "test")[0]
    results = []
    for flush in (True, False):
        atoms = Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
        atoms.calc = PonitaCalculator(model, flush_denormals=flush)
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
        assert not denormals_flushed()  # the calculator restores the mode after each call
    (energy_flushed, forces_flushed), (energy, forces) = results
    assert abs(energy_flushed - energy) <= 1e-6 * abs(energy)
    assert np.allclose(forces_flushed, forces, rtol=1e-5, atol=1e-8)
