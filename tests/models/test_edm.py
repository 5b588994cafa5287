"""EDM with a PONITA denoiser: features, an equivariant noise prediction, zero-mean sampling, reproducibility."""

import pytest
import torch
from torch_geometric.data import Batch, Data

from ponita.geometry import rotation_group
from ponita import testing
from ponita.models import (
    EDM,
    Autoguidance,
    EDMConfig,
    PonitaPotential,
    karras_loss_weight,
    karras_preconditioning,
    karras_sigmas,
    load_model,
    sampling_times,
    save_model,
)

NETWORK = {"hidden_dim": 16, "num_layers": 2, "num_ori": 12, "grid": "polyhedron", "basis_dim": 16}


def tiny_edm(**options) -> EDM:
    return EDM(EDMConfig([1, 6, 7, 8, 9], {3: 2, 5: 3}, steps=20, network=NETWORK, **options))


def molecules() -> Batch:
    methane = Data(pos=torch.randn(5, 3), z=torch.tensor([6, 1, 1, 1, 1]))
    water = Data(pos=torch.randn(3, 3), z=torch.tensor([8, 1, 1]))
    return Batch.from_data_list([methane, water])


def test_features_are_one_hot_quarter_and_a_tenth_of_the_atomic_number() -> None:
    features = tiny_edm().features(torch.tensor([6, 9]))
    assert features.tolist() == [[0, 0.25, 0, 0, 0, 0.6000000000000001], [0, 0, 0, 0, 0.25, 0.9]]


def test_noise_prediction_is_equivariant_and_zero_mean() -> None:
    model = tiny_edm().double()
    batch = molecules()
    pos, h = batch.pos.double(), torch.randn(8, 6, dtype=torch.float64)
    t = torch.full((8,), 0.4, dtype=torch.float64)
    rotation = rotation_group("icosahedral", dtype=torch.float64)[9]  # maps the 12-point grid onto itself
    eps_pos, eps_h = model.predict_noise(pos, h, t, batch.batch)
    eps_pos_r, eps_h_r = model.predict_noise(pos @ rotation.T + 3.0, h, t, batch.batch)
    assert torch.allclose(eps_pos_r, eps_pos @ rotation.T, atol=1e-10) and torch.allclose(eps_h_r, eps_h, atol=1e-10)
    means = torch.stack([eps_pos[batch.batch == g].mean(0) for g in range(2)])
    assert means.abs().max() < 1e-12


def test_sampling_keeps_positions_centred_at_every_step(monkeypatch) -> None:
    model = tiny_edm().double()
    seen = []
    original = model.predict_noise

    def spy(pos, h, t, batch, *args):
        seen.append(max(float(pos[batch == g].mean(0).abs().max()) for g in range(int(batch.max()) + 1)))
        return original(pos, h, t, batch, *args)

    monkeypatch.setattr(model, "predict_noise", spy)
    sample = model.sample(torch.tensor([4, 6]), generator=torch.Generator().manual_seed(0))
    assert len(seen) == 21 and max(seen) < 1e-12  # 20 steps and the final p(x | z_0)
    assert sample.pos.shape == (10, 3) and set(sample.z.tolist()) <= {1, 6, 7, 8, 9}
    assert torch.equal(sample.batch, torch.tensor([0] * 4 + [1] * 6))


def test_the_same_seed_gives_the_same_molecules_also_after_reloading(tmp_path) -> None:
    model = tiny_edm()
    model.calibrate(molecules())
    reloaded = load_model(save_model(model, tmp_path / "generator.pt", task="qm9-edm"))
    first = model.sample(torch.tensor([5]), steps=10, generator=torch.Generator().manual_seed(7))
    second = reloaded.sample(torch.tensor([5]), steps=10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first.pos, second.pos) and torch.equal(first.z, second.z)
    assert reloaded.calibrated and reloaded.config == model.config


def test_training_lowers_the_noise_error_at_fixed_noise() -> None:
    torch.manual_seed(0)
    model = tiny_edm(condition_kernel=False)
    batch = molecules()
    model.calibrate(batch)
    fixed = lambda: model.loss(batch, torch.Generator().manual_seed(1))  # noqa: E731
    before = float(fixed())
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(60):
        loss = model.loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(fixed()) < 0.8 * before


def test_ddim_is_deterministic_given_the_initial_noise_and_keeps_positions_centred() -> None:
    model = tiny_edm().double()
    first = model.sample(torch.tensor([4, 5]), steps=5, generator=torch.Generator().manual_seed(3), sampler="ddim")
    again = model.sample(torch.tensor([4, 5]), steps=5, generator=torch.Generator().manual_seed(3), sampler="ddim")
    assert torch.equal(first.pos, again.pos) and torch.equal(first.z, again.z)
    assert max(float(first.pos[first.batch == g].mean(0).abs().max()) for g in range(2)) < 1e-10
    ancestral = model.sample(torch.tensor([4, 5]), steps=5, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(ancestral.pos, first.pos)
    with pytest.raises(ValueError, match="Unknown sampler 'euler'"):
        model.sample(torch.tensor([3]), sampler="euler")


def test_sizes_come_from_the_training_histogram_and_bad_steps_are_errors() -> None:
    model = tiny_edm()
    sizes = model.sample_sizes(200, torch.Generator().manual_seed(0))
    assert set(sizes.tolist()) == {3, 5} and 0.45 < float((sizes == 5).float().mean()) < 0.75  # 3 : 2
    with pytest.raises(ValueError, match="steps must lie in 1..20"):
        model.sample(torch.tensor([3]), steps=21)


def test_nll_is_one_finite_reproducible_number_per_molecule_and_sums_its_terms() -> None:
    model, data = tiny_edm().double().eval(), molecules()
    nll = model.nll(data, torch.Generator().manual_seed(0))
    assert nll.shape == (int(data.batch.max()) + 1,) and nll.dtype == torch.float64 and torch.isfinite(nll).all()
    assert torch.equal(nll, model.nll(data, torch.Generator().manual_seed(0)))
    # With a denoiser that predicts no noise, the t > 0 term is T/2 (SNR(s)/SNR(t) - 1)·||ε||², whose mean over
    # draws is large; a trained denoiser must beat it. Here: the bound is at least the terms that do not
    # depend on the denoiser, -log p(N) + the Gaussian constants of p(x | z0) (negative: a narrow density).
    sizes = torch.bincount(data.batch)
    histogram = model.size_probabilities / model.size_probabilities.sum()
    log_p_n = torch.log(histogram[torch.searchsorted(model.sizes, sizes)])
    gamma_0 = model.schedule(torch.zeros(1, dtype=torch.float64))
    constants = (sizes - 1) * 3 * (0.5 * gamma_0 + 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)))
    assert (nll > -log_p_n + constants).all()


def test_nll_of_a_molecule_size_never_seen_in_training_is_infinite() -> None:
    model = tiny_edm().double().eval()
    unseen = max(model.config.size_counts) + 1
    data = Batch.from_data_list([Data(pos=torch.randn(unseen, 3), z=torch.ones(unseen, dtype=torch.long))])
    assert torch.isinf(model.nll(data, torch.Generator().manual_seed(0))).all()


def test_sampling_times_take_exactly_the_steps_asked_for_and_all_of_them_at_full_length() -> None:
    for total, steps, spacing in [(1000, 100, 2.0), (1000, 999, 2.0), (1000, 7, 3.0), (20, 20, 2.5), (1000, 50, 0.5)]:
        indices = (sampling_times(total, steps, spacing) * total).round().long()
        assert indices[0] == total and indices[-1] == 0 and len(indices) == steps + 1
        assert (indices[:-1] > indices[1:]).all()  # every step moves
    assert (sampling_times(1000, 100, 1.0) * 1000).round().long().tolist() == list(range(1000, -1, -10))
    starts = lambda spacing: (sampling_times(1000, 100, spacing)[:-1] * 1000).round().long()  # noqa: E731
    assert int((starts(2.0) <= 100).sum()) == 31 and int((starts(1.0) <= 100).sum()) == 10  # steps from t ≤ T/10


def test_spacing_moves_only_fewer_steps_and_enters_the_reverse_process(monkeypatch) -> None:
    model = tiny_edm().double()
    draw = lambda steps, spacing: model.sample(  # noqa: E731
        torch.tensor([4, 5]), steps, torch.Generator().manual_seed(2), spacing=spacing)
    full_uniform, full_quadratic = draw(20, 1.0), draw(20, 2.0)
    assert torch.equal(full_uniform.pos, full_quadratic.pos)  # all T steps: the spacing has nothing to choose
    seen = []
    original = model.predict_noise
    spy = lambda pos, h, t, *args: seen.append(float(t[0])) or original(pos, h, t, *args)  # noqa: E731
    monkeypatch.setattr(model, "predict_noise", spy)
    draw(5, 2.0)
    assert [round(t * 20) for t in seen] == [20, 13, 7, 3, 1, 0]  # the steps' times, then p(x | z_0) at 0
    with pytest.raises(ValueError, match="a finite spacing > 0; got steps=5, spacing=0.0"):
        model.sample(torch.tensor([3]), steps=5, spacing=0.0)


# The preconditioned ("karras") objective.


def test_karras_preconditioning_and_loss_weight_match_a_hand_computation() -> None:
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = karras_preconditioning(sigma, 1.0)
    assert torch.allclose(c_skip, torch.tensor([1 / 1.25, 1 / 5], dtype=torch.float64))
    assert torch.allclose(c_out, torch.tensor([0.5 / 1.25**0.5, 2 / 5**0.5], dtype=torch.float64))
    assert torch.allclose(c_in, torch.tensor([1 / 1.25**0.5, 1 / 5**0.5], dtype=torch.float64))
    assert torch.allclose(c_noise, torch.tensor([-0.17328679513998632, 0.17328679513998632], dtype=torch.float64))
    weight = karras_loss_weight(sigma, 0.5)
    assert torch.allclose(weight, torch.tensor([(0.25 + 0.25) / 0.0625, (4 + 0.25) / 1.0], dtype=torch.float64))
    assert torch.allclose(weight, 1 / karras_preconditioning(sigma, 0.5)[1] ** 2)  # λ = 1 / c_out²


def test_karras_loss_is_the_weighted_error_of_the_preconditioned_denoiser() -> None:
    model = tiny_edm(objective="karras", sigma_data=0.7, p_mean=-1.0, p_std=0.5).double()
    data = molecules()
    loss = model.loss(data, torch.Generator().manual_seed(5))
    # The same draws, written out: ln σ per molecule, then position noise (centred), then feature noise.
    generator = torch.Generator().manual_seed(5)
    sigma = (-1.0 + 0.5 * torch.randn(2, dtype=torch.float64, generator=generator)).exp()[data.batch][:, None]
    eps_x = torch.randn(8, 3, dtype=torch.float64, generator=generator)
    eps_x = eps_x - torch.stack([eps_x[data.batch == g].mean(0) for g in range(2)])[data.batch]
    eps_h = torch.randn(8, 6, dtype=torch.float64, generator=generator)
    x = data.pos.double() - torch.stack([data.pos.double()[data.batch == g].mean(0) for g in range(2)])[data.batch]
    h = model.features(data.z)
    total = sigma**2 + 0.49
    c_skip, c_out, c_in = 0.49 / total, sigma * 0.7 / total.sqrt(), 1 / total.sqrt()
    out_x, out_h = model.predict_noise(c_in * (x + sigma * eps_x), c_in * (h + sigma * eps_h), sigma[:, 0].log() / 4,
                                       data.batch)
    denoised_x = c_skip * (x + sigma * eps_x) + c_out * out_x
    denoised_h = c_skip * (h + sigma * eps_h) + c_out * out_h
    weight = (sigma**2 + 0.49) / (sigma * 0.7) ** 2
    expected = torch.cat([weight * (denoised_x - x) ** 2, weight * (denoised_h - h) ** 2], -1).mean()
    assert torch.allclose(loss.double(), expected, rtol=1e-6)


def test_karras_denoiser_is_equivariant_and_keeps_the_centre() -> None:
    model = tiny_edm(objective="karras").double()
    batch = molecules()
    pos = batch.pos.double() - torch.stack([batch.pos.double()[batch.batch == g].mean(0) for g in range(2)])[batch.batch]
    h, sigma = torch.randn(8, 6, dtype=torch.float64), torch.full((8,), 0.3, dtype=torch.float64)
    rotation = rotation_group("icosahedral", dtype=torch.float64)[9]  # maps the 12-point grid onto itself
    d_pos, d_h = model.denoise(pos, h, sigma, batch.batch, 2)
    d_pos_r, d_h_r = model.denoise(pos @ rotation.T, h, sigma, batch.batch, 2)
    assert torch.allclose(d_pos_r, d_pos @ rotation.T, atol=1e-10) and torch.allclose(d_h_r, d_h, atol=1e-10)
    assert torch.stack([d_pos[batch.batch == g].mean(0) for g in range(2)]).abs().max() < 1e-12


def test_heun_sampler_is_reproducible_centred_and_calls_the_denoiser_twice_per_step_but_the_last(monkeypatch) -> None:
    model = tiny_edm(objective="karras").double()
    sizes = torch.tensor([4, 6])
    first = model.sample(sizes, steps=6, generator=torch.Generator().manual_seed(1))
    again = model.sample(sizes, steps=6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first.pos, again.pos) and torch.equal(first.z, again.z)
    assert max(float(first.pos[first.batch == g].mean(0).abs().max()) for g in range(2)) < 1e-10
    assert not torch.equal(first.pos, model.sample(sizes, steps=6, generator=torch.Generator().manual_seed(2)).pos)
    levels = []
    original = model.denoise
    monkeypatch.setattr(model, "denoise", lambda pos, h, sigma, *args: levels.append(float(sigma[0])) or
                        original(pos, h, sigma, *args))
    model.sample(sizes, steps=6, generator=torch.Generator().manual_seed(1), churn=0.0, sigma_max=2.0)
    expected = karras_sigmas(6, 0.002, 2.0)
    assert len(levels) == 11  # 2 · 6 − 1: no correction into σ = 0
    assert levels[0] == pytest.approx(2.0) and levels[-1] == pytest.approx(float(expected[-2]))


def test_heun_churn_range_scale_and_rho_are_karras_algorithm_2(monkeypatch) -> None:
    model = tiny_edm(objective="karras").double()
    sizes, seed = torch.tensor([4, 6]), lambda: torch.Generator().manual_seed(1)
    plain = model.sample(sizes, steps=6, generator=seed(), churn=0.0)
    # No step inside the churn range: exactly the sampler without churn.
    assert torch.equal(model.sample(sizes, steps=6, generator=seed(), churn=20.0, churn_range=(0.0, 1e-3)).pos, plain.pos)
    # Fresh noise scaled to zero: the churn's noise, whatever it is, leaves no trace.
    quiet = model.sample(sizes, steps=6, generator=seed(), churn=20.0, churn_scale=0.0)
    calls, noise = [], model._noise
    monkeypatch.setattr(model, "_noise", lambda *args: noise(*args) * (1.0 if calls.append(0) or len(calls) <= 2 else 1e6))
    assert torch.equal(model.sample(sizes, steps=6, generator=seed(), churn=20.0, churn_scale=0.0).pos, quiet.pos)
    assert len(calls) == 2 + 2 * 6 and not torch.equal(quiet.pos, plain.pos)  # the raised levels remain
    monkeypatch.undo()
    levels = []
    original = model.denoise
    monkeypatch.setattr(model, "denoise", lambda pos, h, sigma, *args: levels.append(float(sigma[0])) or
                        original(pos, h, sigma, *args))
    model.sample(sizes, steps=6, generator=seed(), churn=1.2, sigma_max=2.0, rho=3.0, churn_range=(0.05, 1.0))
    sigmas, gamma = karras_sigmas(6, 0.002, 2.0, rho=3.0).tolist(), 0.2  # churn / steps
    churned = [s * (1 + gamma) if 0.05 <= s <= 1.0 else s for s in sigmas[:-1]]
    expected = [level for hat, next_level in zip(churned, sigmas[1:]) for level in (hat, next_level) if next_level > 0]
    assert levels == pytest.approx(expected + [churned[-1]])
    with pytest.raises(ValueError, match="churn_range"):
        model.sample(sizes, steps=6, churn_range=(1.0, 0.5))


def test_karras_sigmas_run_from_max_to_min_then_zero() -> None:
    sigmas = karras_sigmas(40, 0.002, 5.0)
    assert len(sigmas) == 41 and sigmas[0] == pytest.approx(5.0) and sigmas[-2] == pytest.approx(0.002)
    assert sigmas[-1] == 0 and (sigmas[:-1] > sigmas[1:]).all()


def test_each_objective_refuses_the_others_samplers_and_karras_has_no_nll() -> None:
    with pytest.raises(ValueError, match="objective 'karras' samples with 'heun'"):
        tiny_edm(objective="karras").sample(torch.tensor([3]), sampler="ancestral")
    with pytest.raises(ValueError, match="does not fit objective 'vp'"):
        tiny_edm().sample(torch.tensor([3]), sampler="heun")
    with pytest.raises(ValueError, match="defined for objective 'vp' only"):
        tiny_edm(objective="karras").nll(molecules())
    with pytest.raises(ValueError, match="Unknown objective 've'"):
        tiny_edm(objective="ve")


@pytest.mark.parametrize("objective", ["vp", "karras"])
def test_the_denoiser_never_waits_for_the_device_given_the_batch_graph(objective) -> None:
    model = tiny_edm(objective=objective).double()
    batch = molecules()
    edges = model.edges([5, 3])
    pos, h = batch.pos.double(), torch.randn(8, 6, dtype=torch.float64)
    level = torch.full((8,), 0.3, dtype=torch.float64)
    with testing.HostSyncCounter() as counter:
        model.predict_noise(pos, h, level, batch.batch, 2, edges)
        if objective == "karras":
            model.denoise(pos, h, level, batch.batch, 2, edges)
    assert counter.total == 0, dict(counter.counts)
    reference = model.predict_noise(pos, h, level, batch.batch)  # builds its own graph
    assert torch.allclose(model.predict_noise(pos, h, level, batch.batch, 2, edges)[0], reference[0], atol=1e-12)


@pytest.mark.parametrize("objective", ["vp", "karras"])
def test_a_molecules_bonds_are_not_the_denoisers_graph(objective) -> None:
    """QM9 molecules carry their bonds as edge_index; the denoiser always connects all atoms of a molecule."""
    model = tiny_edm(objective=objective).double().eval()
    plain = molecules()
    bonded = plain.clone()
    bonded.edge_index = torch.tensor([[0, 1, 0, 2, 5, 6], [1, 0, 2, 0, 6, 5]])  # a few bonds of each molecule
    for measure in (lambda batch, seed: model.loss(batch, torch.Generator().manual_seed(seed)),
                    lambda batch, seed: model.denoising_error(batch, 0.1, torch.Generator().manual_seed(seed))):
        assert torch.equal(measure(bonded, 3), measure(plain, 3))


def test_denoising_error_shrinks_with_the_noise_level_for_both_objectives() -> None:
    for objective in ("vp", "karras"):
        model = tiny_edm(objective=objective).double().eval()
        errors = [float(model.denoising_error(molecules(), noise, torch.Generator().manual_seed(0)))
                  for noise in (1e-3, 0.1)]
        assert 0 < errors[0] < 0.05 < errors[1] < 10, (objective, errors)  # Å; near the data the estimate is x itself


def test_heun_sampler_with_an_oracle_denoiser_lands_on_the_data(monkeypatch) -> None:
    # For data that are a single molecule, the ideal denoiser returns it at every noise level; the sampler
    # must then end exactly there (the churn's fresh noise is removed again on the way down).
    model = tiny_edm(objective="karras").double()
    target_pos = torch.tensor([[0.0, 0.0, 0.7], [0.0, 0.0, -0.7], [0.3, 0.9, 0.0]], dtype=torch.float64)
    target_pos = target_pos - target_pos.mean(0)
    target_h = model.features(torch.tensor([6, 8, 1]))
    monkeypatch.setattr(model, "denoise", lambda pos, h, sigma, batch, *args: (target_pos.repeat(2, 1),
                                                                                target_h.repeat(2, 1)))
    sample = model.sample(torch.tensor([3, 3]), steps=12, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sample.pos, target_pos.repeat(2, 1), atol=1e-9)
    assert sample.z.tolist() == [6, 8, 1, 6, 8, 1]


def test_a_generator_guided_by_itself_samples_exactly_as_unguided_and_guidance_is_reproducible() -> None:
    model = tiny_edm(objective="karras").double()
    sizes, seed = torch.tensor([4, 6]), lambda: torch.Generator().manual_seed(1)
    plain = model.sample(sizes, steps=6, generator=seed())
    itself = model.sample(sizes, steps=6, generator=seed(), guidance=Autoguidance(model, 3.0, (0.0, 10.0)))
    assert torch.equal(itself.pos, plain.pos) and torch.equal(itself.z, plain.z)  # D_g + w (D - D_g) = D exactly
    torch.manual_seed(5)
    weaker = Autoguidance(tiny_edm(objective="karras").double(), 2.0)
    guided = model.sample(sizes, steps=6, generator=seed(), guidance=weaker)
    again = model.sample(sizes, steps=6, generator=seed(), guidance=weaker)
    assert torch.equal(guided.pos, again.pos) and not torch.equal(guided.pos, plain.pos)
    assert max(float(guided.pos[guided.batch == g].mean(0).abs().max()) for g in range(2)) < 1e-10


def test_autoguidance_denoises_with_the_guide_plus_w_times_the_difference_within_its_range(monkeypatch) -> None:
    # Constant denoisers: the sampler's last step (into σ = 0) lands exactly on the denoised estimate of its
    # level, so the samples show which denoiser the last level used; the guide's calls show the guided levels.
    model, guide = tiny_edm(objective="karras").double(), tiny_edm(objective="karras").double()
    pos_good, pos_bad = torch.randn(2, 3, 3, dtype=torch.float64)
    pos_good, pos_bad = pos_good - pos_good.mean(0), pos_bad - pos_bad.mean(0)
    h_good, h_bad = model.features(torch.tensor([6, 8, 1])), model.features(torch.tensor([7, 1, 1]))
    guide_levels = []
    monkeypatch.setattr(model, "denoise", lambda *args: (pos_good.repeat(2, 1), h_good.repeat(2, 1)))
    monkeypatch.setattr(guide, "denoise", lambda pos, h, sigma, *args: guide_levels.append(float(sigma[0])) or
                        (pos_bad.repeat(2, 1), h_bad.repeat(2, 1)))
    sizes, levels = torch.tensor([3, 3]), karras_sigmas(12, 0.002, 0.5).tolist()

    def sample(weight: float, sigma_range: tuple[float, float], features: bool = False):
        guide_levels.clear()
        return model.sample(sizes, steps=12, generator=torch.Generator().manual_seed(0), churn=0.0,
                            guidance=Autoguidance(guide, weight, sigma_range, features))

    guided = sample(2.5, (0.0, 0.5))
    assert torch.allclose(guided.pos, (pos_bad + 2.5 * (pos_good - pos_bad)).repeat(2, 1), atol=1e-9)
    assert len(guide_levels) == 2 * 12 - 1  # every call of the sampler guided
    assert guided.z.tolist() == [6, 8, 1, 6, 8, 1]  # the types from D alone
    # With the features: h_bad + w (h_good - h_bad) = (1 - w) h_bad + w h_good, whose one-hot maxima are
    # h_bad's types at w = 0.1 and h_good's at w = 2.5.
    assert sample(0.1, (0.0, 0.5), features=True).z.tolist() == [7, 1, 1] * 2
    assert sample(2.5, (0.0, 0.5), features=True).z.tolist() == [6, 8, 1] * 2
    tail = sample(2.5, (0.01, 0.2))  # the last level (0.002) is not guided
    assert torch.allclose(tail.pos, pos_good.repeat(2, 1), atol=1e-9)
    assert guide_levels and all(0.01 <= level <= 0.2 for level in guide_levels)
    inside = [0.01 <= level <= 0.2 for level in levels]
    assert len(guide_levels) == sum(inside[:-1]) + sum(inside[1:-1])  # Euler at levels[k], Heun at levels[k + 1] > 0
    sample(1.0, (0.0, 0.5))
    assert guide_levels == []  # weight 1: the guide is never called


def test_autoguidance_refuses_a_guide_that_does_not_fit() -> None:
    model, sizes = tiny_edm(objective="karras"), torch.tensor([3])
    with pytest.raises(ValueError, match="guide must be a generator of the 'karras' objective, got 'vp'"):
        model.sample(sizes, steps=2, guidance=Autoguidance(tiny_edm()))
    other = EDM(EDMConfig([1, 6, 8], {3: 1}, objective="karras", network=NETWORK))
    with pytest.raises(ValueError, match="guide generates elements"):
        model.sample(sizes, steps=2, guidance=Autoguidance(other))
    with pytest.raises(ValueError, match="finite weight"):
        model.sample(sizes, steps=2, guidance=Autoguidance(model, float("nan")))
    with pytest.raises(ValueError, match="sigma_range"):
        model.sample(sizes, steps=2, guidance=Autoguidance(model, 2.0, (0.5, 0.1)))
    with pytest.raises(ValueError, match="guides the Heun sampler"):
        tiny_edm().sample(sizes, steps=2, guidance=Autoguidance(model))


def test_resample_runs_the_heun_samplers_tail_from_the_first_level_below_the_start(monkeypatch) -> None:
    model = tiny_edm(objective="karras").double()
    batch = molecules()
    first = model.resample(batch, 0.3, steps=6, generator=torch.Generator().manual_seed(1), sigma_max=2.0)
    again = model.resample(batch, 0.3, steps=6, generator=torch.Generator().manual_seed(1), sigma_max=2.0)
    assert torch.equal(first.pos, again.pos) and torch.equal(first.z, again.z) and torch.equal(first.batch, batch.batch)
    assert max(float(first.pos[first.batch == g].mean(0).abs().max()) for g in range(2)) < 1e-10
    levels = []
    original = model.denoise
    monkeypatch.setattr(model, "denoise", lambda pos, h, sigma, *args: levels.append(float(sigma[0])) or
                        original(pos, h, sigma, *args))
    model.resample(batch, 0.3, steps=6, generator=torch.Generator().manual_seed(1), churn=0.0, sigma_max=2.0)
    sigmas = karras_sigmas(6, 0.002, 2.0).tolist()
    tail = [sigma for sigma in sigmas if sigma <= 0.3]
    assert sigmas[len(sigmas) - len(tail) - 1] > 0.3 and len(tail) >= 3
    expected = [level for current, next_level in zip(tail, tail[1:]) for level in (current, next_level) if next_level > 0]
    assert levels == pytest.approx(expected + [tail[-2]])
    with pytest.raises(ValueError, match="sigma_start must lie in"):
        model.resample(batch, 2.5, sigma_max=2.0)
    with pytest.raises(ValueError, match="'vp'"):
        tiny_edm().resample(batch, 0.3)


def test_resample_with_an_oracle_denoiser_returns_the_molecules_given(monkeypatch) -> None:
    model = tiny_edm(objective="karras").double()
    batch = molecules()
    clean = batch.pos.double() - torch.stack([batch.pos.double()[batch.batch == g].mean(0) for g in range(2)])[batch.batch]
    monkeypatch.setattr(model, "denoise", lambda pos, h, sigma, *args: (clean, model.features(batch.z)))
    out = model.resample(batch, 0.2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out.pos, clean, atol=1e-9) and torch.equal(out.z, batch.z)


def test_resample_takes_one_molecule_without_a_batch_and_refuses_misshapen_input() -> None:
    model = tiny_edm(objective="karras").double()
    water = Data(pos=torch.randn(3, 3), z=torch.tensor([8, 1, 1]))
    out = model.resample(water, 0.1, steps=4, generator=torch.Generator().manual_seed(0))
    assert out.pos.shape == (3, 3) and out.batch.tolist() == [0, 0, 0] and float(out.pos.mean(0).abs().max()) < 1e-10
    with pytest.raises(ValueError, match=r"need pos \[N, 3\] and z \[N\]"):
        model.resample(Data(pos=torch.randn(3, 2), z=torch.tensor([8, 1, 1])), 0.1)


def test_a_deeper_generator_grown_from_a_trained_one_denoises_alike() -> None:
    shallow_network = {**NETWORK, "multiple_readouts": False}
    trained = EDM(EDMConfig([1, 6, 7, 8, 9], {3: 2, 5: 3}, objective="karras", network=shallow_network)).double()
    deeper = EDM(EDMConfig([1, 6, 7, 8, 9], {3: 2, 5: 3}, objective="karras",
                           network={**shallow_network, "num_layers": 4})).double()
    deeper.grow_from(trained)
    data = molecules()
    x = data.pos.double() - torch.stack([data.pos.double()[data.batch == g].mean(0) for g in range(2)])[data.batch]
    h, sigma = trained.features(data.z), torch.full((8,), 0.2, dtype=torch.float64)
    for mine, theirs in zip(deeper.denoise(x, h, sigma, data.batch, 2), trained.denoise(x, h, sigma, data.batch, 2)):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="cannot start from the weights of another model class, PonitaPotential"):
        deeper.grow_from(PonitaPotential([1, 6], {1: -1.0, 6: -2.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4))
