"""EDM's polynomial_2 noise schedule: its values at t = 0, T/2, T, the clipping, and γ from the table."""

import numpy as np
import pytest
import torch

from ponita.models import NoiseSchedule, polynomial_alphas2


def test_alpha2_before_the_precision_correction_is_one_half_squared_at_half_time() -> None:
    alphas2 = polynomial_alphas2(1000, precision=0.0)
    assert alphas2[0] == 1.0 and alphas2[500] == pytest.approx(0.5625, abs=1e-12)
    assert np.all(np.diff(alphas2) <= 0)


def test_step_ratios_are_clipped_to_one_thousandth() -> None:
    alphas2 = polynomial_alphas2(1000, precision=0.0)
    ratios = alphas2[1:] / alphas2[:-1]
    assert ratios.min() == pytest.approx(0.001) and ratios[-1] == pytest.approx(0.001)  # only the last step clips
    assert (ratios[:-1] > 0.001).all()


def test_precision_squeezes_alpha2_into_s_and_one_minus_s() -> None:
    alphas2 = polynomial_alphas2(1000, precision=1e-5)
    raw = polynomial_alphas2(1000, precision=0.0)
    assert np.allclose(alphas2, (1 - 2e-5) * raw + 1e-5, rtol=0, atol=1e-15)
    assert alphas2.max() == pytest.approx(1 - 1e-5) and alphas2.min() > 1e-5


def test_gamma_is_minus_the_log_signal_to_noise_ratio_at_both_ends() -> None:
    schedule = NoiseSchedule(1000)
    gamma = schedule(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    alphas2 = polynomial_alphas2(1000)
    expected = -np.log(alphas2 / (1 - alphas2))[[0, 500, 1000]]
    assert torch.allclose(gamma, torch.from_numpy(expected), rtol=0, atol=1e-12)
    assert gamma[0] == pytest.approx(-np.log((1 - 1e-5) / 1e-5)) and gamma[2] > 11.5
    assert torch.allclose(NoiseSchedule.alpha(gamma) ** 2 + NoiseSchedule.sigma(gamma) ** 2,
                          torch.ones(3, dtype=torch.float64), atol=1e-12)


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="need steps ≥ 1"):
        NoiseSchedule(0)
