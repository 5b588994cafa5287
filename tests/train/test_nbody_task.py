"""The nbody task on the shared stack: both architectures train and lower the loss, test, plot, and the trained
model's predictions rotate with the system."""

import csv
import json

import pytest
import torch
from torch_geometric.data import Batch

import ponita.datasets._nbody as nbody
from ponita.geometry import rotation_group
from ponita.models import EGNNNBody, PonitaNBody, read_checkpoint
from ponita.train import NBodyTask, fit, load_config
from ponita.train.cli import main

SIZES = {"train": 40, "valid": 10, "test": 10}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A small N-body data folder (the first simulations of the real stream, cut to :data:`SIZES`)."""
    folder = tmp_path_factory.mktemp("nbody")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nbody, "NBODY_SPLITS", SIZES)
        nbody.write_nbody(folder)
    return folder


@pytest.fixture
def small_splits(monkeypatch) -> None:
    """Splits of :data:`SIZES` simulations, so the task accepts the small data folder."""
    monkeypatch.setattr(nbody, "NBODY_SPLITS", SIZES)
    monkeypatch.setattr("ponita.train._nbody.NBODY_SPLITS", SIZES)


def tiny_task(data_dir, output, *overrides: str, architecture: str = "ponita") -> NBodyTask:
    options = [f"data_dir={data_dir}", f"output={output}", "num_train=40", "num_val=10", "num_test=10",
               f"architecture={architecture}", "hidden_dim=16", "num_layers=2", "batch_size=10", "lr=5e-3",
               "warmup_epochs=0", "check_val_every_n_epoch=1", "accelerator=cpu", "num_threads=1", "plot_systems=2"]
    if architecture == "ponita":
        options += ["num_ori=8", "basis_dim=16"]
    return NBodyTask(load_config("nbody", "quick", overrides=[*options, *overrides]))


def train_losses(result) -> list[float]:
    with open(result.metrics_csv, newline="") as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


@pytest.mark.parametrize("architecture, model_class", [("ponita", PonitaNBody), ("egnn", EGNNNBody)])
def test_both_architectures_train_through_the_shared_stack(data_dir, small_splits, tmp_path, architecture, model_class) -> None:
    task = tiny_task(data_dir, tmp_path / "run", "max_epochs=12", architecture=architecture)
    result = fit(task, *task.train_val_data(), task.test_data())
    losses = train_losses(result)
    assert len(losses) == 12 and min(losses[-3:]) < 0.7 * losses[0]
    assert result.test_metrics["num_simulations"] == 10 and result.test_metrics["mse"] > 0
    assert (tmp_path / "run" / "trajectories.png").is_file()
    checkpoint = read_checkpoint(result.model)
    assert checkpoint.task == "nbody" and checkpoint.model_class == model_class.__name__


def test_the_trained_model_predicts_rotated_positions_for_a_rotated_system(data_dir, small_splits, tmp_path) -> None:
    task = tiny_task(data_dir, tmp_path / "run", "max_epochs=2", "grid=polyhedron", "num_ori=12")
    result = fit(task, *task.train_val_data())
    model = read_checkpoint(result.model).build().double()
    batch = Batch.from_data_list(task.test_data()[:3])
    batch.pos, batch.vel = batch.pos.double(), batch.vel.double()
    rotation = rotation_group("icosahedral", dtype=torch.float64)[5]  # maps the 12-point grid onto itself
    shift = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    moved = batch.clone()
    moved.pos, moved.vel = batch.pos @ rotation.T + shift, batch.vel @ rotation.T
    with torch.no_grad():
        expected = model(batch) @ rotation.T + shift
        assert torch.allclose(model(moved), expected, atol=1e-10)
        assert not torch.allclose(model(batch), batch.pos, atol=1e-3)  # it moves the particles


def test_ponita_test_reports_the_mse_and_writes_the_plot(data_dir, small_splits, tmp_path, capsys) -> None:
    task = tiny_task(data_dir, tmp_path / "run", "max_epochs=1", architecture="egnn")
    result = fit(task, *task.train_val_data())
    capsys.readouterr()
    out = tmp_path / "scores.json"
    argv = ["test", str(result.model), "--num-test", "4", "--json", str(out), "--artefacts", str(tmp_path / "art")]
    assert main(argv) == 0
    scores = json.loads(out.read_text())
    assert scores["num_simulations"] == 4 and scores["tested_on"].endswith("the first 4 test simulations")
    assert (tmp_path / "art" / "trajectories.png").is_file()
    assert "test MSE of the positions at frame 40" in capsys.readouterr().out


def test_the_paper_preset_is_the_papers_setup() -> None:
    config = load_config("nbody", "paper")
    model = config.model
    assert (model["hidden_dim"], model["num_layers"], model["num_ori"], model["basis_dim"], model["layer_scale"]) == (
        128, 5, 16, 256, 1e-6)
    assert (config.batch_size, config.lr, config.weight_decay, config.max_epochs, config.warmup_epochs) == (
        100, 1e-3, 1e-10, 10000, 10)
    assert (config.ema_decay, config.gradient_clip, config.check_val_every_n_epoch) == (0.0, 0.5, 5)
    assert config.task_options.num_train == 3000 and model["radius"] is None and model["self_loops"]


def test_bad_options_are_errors_before_any_work(small_splits) -> None:
    with pytest.raises(ValueError, match="Unknown model.architecture 'segnn' of task 'nbody'; choose one of ponita, egnn"):
        load_config("nbody", "quick", overrides=["architecture=segnn"])
    with pytest.raises(ValueError, match="model.num_ori is not an option of the egnn model"):
        load_config("nbody", "quick", overrides=["architecture=egnn", "num_ori=8"])
    with pytest.raises(ValueError, match="num_train must lie in 1..40"):
        load_config("nbody", "quick", overrides=["num_train=41"])
