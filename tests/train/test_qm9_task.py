"""The qm9 task on the shared stack: a tiny run lowers the loss and tests; the prediction is rotation invariant."""

import csv
import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from ponita.datasets import process_qm9, read_qm9pack_rows
from ponita.geometry import random_rotation, rotation_group
from ponita.models import PonitaRegressor, read_checkpoint
from ponita.train import QM9Task, fit, load_config
from ponita.train.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="needs pip install 'ponita[qm9]'")


@pytest.fixture(scope="module")
def small_qm9():
    return process_qm9(read_qm9pack_rows()[:300])


@pytest.fixture(autouse=True)
def small_split(small_qm9, monkeypatch) -> None:
    """The task reads the 300 molecules above, split 200 / 50 / 50."""
    monkeypatch.setattr("ponita.train._qm9.load_qm9", lambda data_dir=None: small_qm9)
    split = {"train": np.arange(200), "valid": np.arange(200, 250), "test": np.arange(250, 300)}
    monkeypatch.setattr("ponita.train._qm9.qm9_split", lambda num, scheme: split)


def tiny_task(output, *overrides: str) -> QM9Task:
    options = [f"output={output}", "hidden_dim=16", "num_layers=2", "num_ori=8", "basis_dim=16", "batch_size=20",
               "lr=5e-3", "warmup_epochs=0", "accelerator=cpu", "num_threads=1", "test_batch_size=50"]
    return QM9Task(load_config("qm9", "paper", overrides=[*options, *overrides]))


def test_a_tiny_run_lowers_the_loss_and_tests_in_the_targets_unit(tmp_path, capsys) -> None:
    task = tiny_task(tmp_path / "run", "max_epochs=10", "target=gap")
    result = fit(task, *task.train_val_data(), task.test_data())
    with open(result.metrics_csv, newline="") as file:
        losses = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert len(losses) == 10 and min(losses[-3:]) < 0.8 * losses[0]
    assert result.test_metrics["unit"] == "meV" and result.test_metrics["num_molecules"] == 50
    checkpoint = read_checkpoint(result.model)
    assert checkpoint.model_class == "PonitaRegressor" and checkpoint.metadata["statistics"]["std"] > 0
    capsys.readouterr()
    out = tmp_path / "scores.json"
    assert main(["test", str(result.model), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mae"] == pytest.approx(result.test_metrics["mae"], rel=1e-6)
    assert "test MAE of gap:" in capsys.readouterr().out


def test_the_prediction_is_invariant_to_rotations_of_the_molecule(tmp_path) -> None:
    task = tiny_task(tmp_path / "run", "max_epochs=1", "grid=polyhedron", "num_ori=12")
    result = fit(task, *task.train_val_data())
    model = read_checkpoint(result.model).build().double()
    batch = Batch.from_data_list(task.test_data()[:4])
    rotated = batch.clone()
    rotated.pos = batch.pos @ rotation_group("icosahedral", dtype=torch.float64)[11].T + 1.5
    with torch.no_grad():
        assert torch.allclose(model(rotated), model(batch), rtol=0, atol=1e-9)


def test_the_lifted_preset_trains_on_bond_lifted_points_and_is_rotation_invariant(tmp_path) -> None:
    overrides = [f"output={tmp_path / 'run'}", "hidden_dim=8", "num_layers=1", "basis_dim=8", "batch_size=50",
                 "max_epochs=1", "accelerator=cpu", "num_threads=1"]
    task = QM9Task(load_config("qm9", "lifted", overrides=overrides))
    result = fit(task, *task.train_val_data(), task.test_data())
    model = read_checkpoint(result.model).build().double()
    assert isinstance(model, PonitaRegressor) and result.test_metrics["mae"] > 0
    assert (model.network.config.space, model.network.config.connect_lifted) == ("R3xS2-lifted", "all")
    batch = Batch.from_data_list(task.test_data()[:4])
    rotated = batch.clone()
    rotated.pos = batch.pos @ random_rotation(3, dtype=torch.float64).T - 0.7  # point clouds: any rotation
    with torch.no_grad():
        assert torch.allclose(model(rotated), model(batch), rtol=0, atol=1e-9)


def test_the_lifted_space_equals_lifting_by_hand_averaging_per_atom_then_summing(small_qm9) -> None:
    """The simple reference: lift the bonds with ponita.graph, connect all points of a molecule, run the same
    weights as a network on given oriented points, average per atom, sum per molecule."""
    from ponita import Ponita
    from ponita.graph import fully_connected_graph, lift_edges_to_oriented_points
    from ponita.models import RegressorConfig
    from ponita.ops import scatter_mean, scatter_sum

    network = {"space": "R3xS2-lifted", "connect_lifted": "all", "hidden_dim": 8, "num_layers": 2, "basis_dim": 8}
    model = PonitaRegressor(RegressorConfig(0.0, 1.0, 11, network=network)).double()
    reference_config = dataclasses.replace(model.network.config, space="R3xS2-points", connect_lifted="edges",
                                           task_level="node")
    reference = Ponita.from_config(reference_config).double()
    reference.load_state_dict(model.network.state_dict())
    batch = Batch.from_data_list([small_qm9.molecule(k) for k in (2, 7, 30)])  # water and two larger molecules
    connect = fully_connected_graph(batch.batch, batch.num_nodes)  # [2, E]
    lifted = lift_edges_to_oriented_points(batch.pos.double(), batch.edge_index, connect_index=connect)
    index = lifted.node_index  # [M]
    with torch.no_grad():
        per_point, _ = reference(Data(pos=lifted.pos, ori=lifted.ori, x=batch.x.double()[index],
                                      edge_index=lifted.edge_index))  # [M, 1]
        atoms = scatter_mean(per_point[:, 0], index, batch.num_nodes)  # [N]
        expected = scatter_sum(atoms, batch.batch, 3)  # [G]
        assert torch.allclose(model.standardised(batch), expected, rtol=0, atol=1e-12)
    assert lifted.edge_index.shape[1] == int((torch.bincount(batch.batch[index]) ** 2).sum())  # all points connected


def test_connect_lifted_is_an_option_of_the_lifted_spaces_only() -> None:
    with pytest.raises(ValueError, match=r"connect_lifted='all' applies to the edge-lifted spaces \['R2xS1-lifted', "
                                         r"'R3xS2-lifted'\], not 'R3xS2'"):
        load_config("qm9", "lifted", overrides=["space=R3xS2", "num_ori=8"])  # before any data is read


def test_an_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="Unknown QM9 target 'mu2'; choose one of mu, alpha, homo, lumo, gap, r2, zpve, U0"):
        load_config("qm9", "paper", overrides=["target=mu2"])
