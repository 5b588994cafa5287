"""The charged 5-body generator: the original recipe exactly, its random stream, shapes, caching and samples."""

import numpy as np
import pytest
import torch

import ponita.datasets._nbody as nbody
from ponita.datasets import generate_nbody, load_nbody, nbody_samples, simulate_charged, simulate_charged_reference

SMALL = {"train": 3, "valid": 2, "test": 2}


@pytest.fixture(scope="module")
def small() -> dict[str, nbody.NBodySimulations]:
    return generate_nbody(sizes=SMALL)


def test_first_training_simulations_have_the_known_values(small) -> None:
    # Values of the full generator (seed 43), checked against a step-by-step run of the original recipe.
    train = small["train"]
    assert train.charges[:3, :, 0].tolist() == [[-1, 1, -1, -1, -1], [1, -1, 1, 1, 1], [1, 1, -1, -1, 1]]
    np.testing.assert_allclose(train.loc[0, 30, :, 0], [2.989116317166655, 1.769370120446526, -1.1712942795381607],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(train.loc[0, 40, :, 0], [4.1654998367653935, 2.191309138415654, -1.3826188023600456],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(train.vel[0, 30, :, 0], [1.1338110406668451, 0.39568061256371995, -0.2266065730886864],
                               rtol=0, atol=1e-12)


def test_shapes_and_edges_are_those_of_the_original_files(small) -> None:
    train = small["train"]
    assert train.loc.shape == train.vel.shape == (3, 49, 3, 5)
    assert train.charges.shape == (3, 5, 1) and train.edges.shape == (3, 5, 5)
    np.testing.assert_array_equal(train.edges, train.charges @ train.charges.transpose(0, 2, 1))
    assert set(np.unique(train.charges)) <= {-1.0, 1.0}


def test_vectorised_integration_equals_the_step_by_step_reference_bit_for_bit() -> None:
    charges, loc, vel = nbody.draw_initial_states(np.random.RandomState(43), 3)
    together = simulate_charged(charges, loc, vel)
    for index in range(3):
        alone = simulate_charged_reference(charges[index], loc[index], vel[index])
        assert np.array_equal(together[0][index], alone[0]) and np.array_equal(together[1][index], alone[1])


def test_splits_continue_one_stream_in_the_order_train_valid_test(small) -> None:
    longer = generate_nbody(sizes={"train": 5, "valid": 1})
    np.testing.assert_array_equal(small["valid"].loc, longer["train"].loc[3:5])
    np.testing.assert_array_equal(small["train"].loc, longer["train"].loc[:3])
    # Each simulation draws 5 uniforms and 30 + 2·735 normals; the stream after three simulations:
    state = np.random.RandomState(43)
    for _ in range(3):
        state.choice(np.array([-1.0, 0.0, 1.0]), size=(5, 1), p=[0.5, 0, 0.5])
        state.randn(3, 5), state.randn(3, 5), state.randn(49, 3, 5), state.randn(49, 3, 5)
    charges, _, _ = nbody.draw_initial_states(state, 2)
    np.testing.assert_array_equal(charges, small["valid"].charges)


def test_the_result_does_not_depend_on_the_chunk_size() -> None:
    a = generate_nbody(sizes={"train": 4}, chunk=4)["train"]
    b = generate_nbody(sizes={"train": 4}, chunk=3)["train"]
    assert np.array_equal(a.loc, b.loc) and np.array_equal(a.vel, b.vel)


def test_load_generates_once_then_reads_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(nbody, "NBODY_SPLITS", SMALL)
    calls = []
    first = load_nbody("valid", tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"nbody_small_{s}.npz" for s in ("test", "train", "valid")]
    assert calls[-1] == (7, 7)
    monkeypatch.setattr(nbody, "write_nbody", lambda *args: pytest.fail("the cache was not used"))
    again = load_nbody("valid", tmp_path)
    assert np.array_equal(first.loc, again.loc) and len(load_nbody("train", tmp_path, max_samples=2)) == 2


def test_a_truncated_cache_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(nbody, "NBODY_SPLITS", SMALL)
    load_nbody("test", tmp_path)
    path = tmp_path / "nbody_small_test.npz"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="nbody_small_test.npz is not a complete N-body file.*delete it"):
        load_nbody("test", tmp_path)
    with pytest.raises(ValueError, match="Unknown N-body split 'val'"):
        load_nbody("val", tmp_path)


def test_samples_map_frame_30_to_the_positions_at_frame_40(small) -> None:
    samples = nbody_samples(small["train"])
    sample = samples[1]
    assert sample.pos.shape == sample.vel.shape == sample.target.shape == (5, 3) and sample.charge.shape == (5, 1)
    assert sample.pos.dtype == torch.float32
    assert torch.equal(sample.pos, torch.tensor(small["train"].loc[1, 30].T, dtype=torch.float32))
    assert torch.equal(sample.target, torch.tensor(small["train"].loc[1, 40].T, dtype=torch.float32))
    assert torch.equal(sample.vel, torch.tensor(small["train"].vel[1, 30].T, dtype=torch.float32))
