"""Test metrics averaged over rotations, the exported EMA model and the config stored for --resume."""

from typing import Any

import pytest
import torch
from torch_geometric.data import Data

from ponita.datasets import fit_atomic_reference_energies, force_rms, load_rmd17
from ponita.models import PonitaPotential, read_checkpoint
from ponita.train import (MD17Task, RunResult, config_changes, evaluate_potential, export_model, fit, load_config,
                          resume_config)

TINY = ["compile_step=false", "ema_decay=0.9", "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "batch_size=2", "warmup_epochs=0",
        "max_time_minutes=null", "lr_horizon=epochs", "accelerator=cpu", "num_threads=null", "max_epochs=2", "lr=1e-2"]


@pytest.fixture(scope="module")
def frames() -> list[Data]:
    return load_rmd17("ethanol", "train")[:6]


def _potential(frames: list[Data], space: str, statistics: bool = True) -> PonitaPotential:
    """A float64 potential; with ``statistics`` the training E0 and force scale, otherwise E0 = 0 and s = 100."""
    reference = fit_atomic_reference_energies(frames) if statistics else {1: 0.0, 6: 0.0, 8: 0.0}
    scale = force_rms(frames) if statistics else 100.0
    num_ori = 4 if space == "R3xS2" else None
    model = PonitaPotential([1, 6, 8], reference, scale, space=space, num_ori=num_ori, hidden_dim=8, basis_dim=8,
                            num_layers=2).double()
    model.calibrate(frames[0])
    return model


def _labelled_by(model: PonitaPotential, frames: list[Data]) -> list[Data]:
    """The frames labelled with the model's own (unrotated) energies and forces."""
    labelled = []
    for frame in frames:
        energy, forces = model(frame)
        labelled.append(Data(z=frame.z, pos=frame.pos, energy=energy.detach(), forces=forces.detach()))
    return labelled


def test_rotation_averaged_maes_of_an_invariant_potential_equal_the_single_pass(frames: list[Data]) -> None:
    model = _potential(frames, "R3")  # a point cloud: invariant energy, equivariant forces to round-off
    metrics = evaluate_potential(model, frames[:3], batch_size=2, rotations=3)
    assert metrics["rotations"] == 3 and metrics["num_frames"] == 3
    assert metrics["forces_mae_meV_per_A"] > 1.0  # an untrained model: the MAEs are far from zero
    averaged = metrics["rotation_averaged_forces_mae_meV_per_A"]
    assert averaged == pytest.approx(metrics["forces_mae_meV_per_A"], rel=1e-10)
    # energies are of order 1e9 meV, so round-off is of order 1e-6 meV
    assert metrics["rotation_averaged_energy_mae_meV"] == pytest.approx(metrics["energy_mae_meV"], abs=1e-5)


def test_rotation_averaging_rotates_the_forces_back_into_the_frame(frames: list[Data]) -> None:
    """Labelled with its own predictions, an equivariant potential has zero error with or without averaging;
    forces left in the rotated frame (or rotated back with R instead of Rᵀ) would give an error of order |F|."""
    model = _potential(frames, "R3", statistics=False)
    labelled = _labelled_by(model, frames[:3])
    metrics = evaluate_potential(model, labelled, batch_size=2, rotations=3)
    assert metrics["energy_mae_meV"] < 1e-12 and metrics["forces_mae_meV_per_A"] < 1e-12  # batched: round-off
    assert torch.cat([frame.forces for frame in labelled]).abs().mean() > 1.0
    assert metrics["rotation_averaged_forces_mae_meV_per_A"] < 1e-10
    assert metrics["rotation_averaged_energy_mae_meV"] < 1e-10


def test_rotation_averaging_is_seeded_and_optional(frames: list[Data]) -> None:
    model = _potential(frames, "R3xS2")  # the fibre bundle is only approximately equivariant
    first = evaluate_potential(model, frames[:2], rotations=2, seed=5)
    assert evaluate_potential(model, frames[:2], rotations=2, seed=5) == first
    other = evaluate_potential(model, frames[:2], rotations=2, seed=6)
    assert other["rotation_averaged_forces_mae_meV_per_A"] != first["rotation_averaged_forces_mae_meV_per_A"]
    assert other["forces_mae_meV_per_A"] == first["forces_mae_meV_per_A"]
    plain = evaluate_potential(model, frames[:2])
    assert set(plain) == {"energy_mae_meV", "forces_mae_meV_per_A", "num_frames"}
    assert plain["forces_mae_meV_per_A"] == first["forces_mae_meV_per_A"]


@pytest.fixture(scope="module")
def run(frames: list[Data], tmp_path_factory) -> tuple[MD17Task, RunResult]:
    """A two-epoch run whose EMA weights (decay 0.9) differ clearly from the trained weights."""
    task = MD17Task(load_config("md17", "quick", overrides=[*TINY, f"output={tmp_path_factory.mktemp('run')}"]))
    return task, fit(task, frames[:4], frames[4:6])


def _prefixed(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in state_dict.items() if key.startswith(prefix)}


def test_exported_model_holds_the_ema_weights_of_the_checkpoint(run, tmp_path) -> None:
    _, result = run
    lightning = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    ema, trained = _prefixed(lightning, "ema."), _prefixed(lightning, "model.")
    path = export_model(result.best_checkpoint, tmp_path / "exported.pt")
    # The run's own model file has its reference energies refit after training (MD17Task.finalize).
    for exported, refit in ((read_checkpoint(path).build(), set()), (read_checkpoint(result.model).build(), {"reference_energies"})):
        state = exported.state_dict()
        assert state.keys() == ema.keys() == trained.keys()
        for name, value in state.items():
            assert value.dtype == ema[name].dtype and torch.equal(value, ema[name]) != (name in refit), name
        assert any(not torch.equal(state[name], trained[name]) for name, _ in exported.named_parameters())


def test_resume_config_is_the_config_of_the_run(run) -> None:
    task, result = run
    assert resume_config(result.last_checkpoint) == task.config
    assert resume_config(result.best_checkpoint) == task.config


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [("lr=0.125", "lr", 0.125), ("model.num_ori=6", "model.num_ori", 6),
     ("task_options.test_rotations=2", "task_options.test_rotations", 2)],
)
def test_resume_config_override_changes_only_that_field(run, override: str, key: str, value: Any) -> None:
    task, result = run
    resumed = resume_config(result.last_checkpoint, [override])
    assert [change.split(":")[0] for change in config_changes(task.config, resumed)] == [key]
    section, _, name = key.rpartition(".")
    values = resumed.as_dict()
    assert (values[section][name] if section else values[name]) == value


@pytest.mark.parametrize(("name", "objective"), [("qm9_edm_quick_training_state.ckpt", "vp"),
                                                 ("qm9_edm_karras_training_state.ckpt", "karras")])
def test_the_shipped_generator_training_states_resume_and_export_in_todays_layout(tmp_path, name, objective) -> None:
    """Both were written before the diffusion options moved from task_options into the model's config."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "pretrained" / name
    config = resume_config(path)
    assert (config.model["objective"], config.model["noise_precision"], config.model["steps"]) == (objective, 1e-5, 1000)
    model = read_checkpoint(export_model(path, tmp_path / "generator.pt")).build()
    assert model.config.objective == objective and model.config.noise_precision == 1e-5
