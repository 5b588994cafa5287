"""A new task is one module plus a preset: the dipole plug-in trains, resumes exactly and tests through the shared stack."""

import json
from pathlib import Path

import pytest
import torch

from ponita.models import read_checkpoint
from ponita.train import fit, load_config, task_class, tasks
from ponita.train.cli import main

PLUGIN = Path(__file__).with_name("dipole_task.py")


@pytest.fixture(autouse=True)
def dipole_plugin(monkeypatch) -> None:
    monkeypatch.setenv("PONITA_TASKS", str(PLUGIN))


def test_the_plugin_task_is_listed_with_its_preset(capsys) -> None:
    assert "dipole" in tasks()
    assert main(["train", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "dipole" in printed and "--preset tiny  (default)" in printed


def test_the_plugin_task_trains_and_tests_from_the_command_line(tmp_path, capsys) -> None:
    output = tmp_path / "run"
    assert main(["train", "dipole", "--output", str(output), "max_epochs=8"]) == 0
    scores = json.loads((output / "test.json").read_text())
    assert scores["num_clouds"] == 32 and scores["tested_on"] == "32 clouds of seed 1"
    assert scores["dipole_mae"] < 0.5 * scores["zero_prediction_mae"]  # it learned the vector, not a constant
    checkpoint = read_checkpoint(output / "dipole.pt")
    assert (checkpoint.task, checkpoint.model_class) == ("dipole", "DipoleModel")
    assert checkpoint.metadata["statistics"]["scale"] > 0
    capsys.readouterr()
    assert main(["test", str(output / "dipole.pt"), "--num-test", "8", "--json", str(tmp_path / "t.json")]) == 0
    assert "Trained on: 64 train / 16 val clouds of seed 0" in capsys.readouterr().out
    assert json.loads((tmp_path / "t.json").read_text())["num_clouds"] == 8


def test_the_plugin_task_resumes_exactly(tmp_path, stop_after_epochs) -> None:
    cls = task_class("dipole")
    overrides = ["max_epochs=3", "task_options.num_train=16", "task_options.num_val=8"]
    straight_task = cls(load_config("dipole", "tiny", overrides=[*overrides, f"output={tmp_path / 'a'}"]))
    straight = fit(straight_task, *straight_task.train_val_data())
    task = cls(load_config("dipole", "tiny", overrides=[*overrides, f"output={tmp_path / 'b'}"]))
    interrupted = fit(task, *task.train_val_data(), callbacks=[stop_after_epochs(1)])
    resumed = fit(task, *task.train_val_data(), resume=interrupted.last_checkpoint)
    a = torch.load(straight.last_checkpoint, weights_only=False)
    b = torch.load(resumed.last_checkpoint, weights_only=False)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 6)
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert a["ponita_task"] == "dipole" and a["ponita_statistics"] == b["ponita_statistics"]
