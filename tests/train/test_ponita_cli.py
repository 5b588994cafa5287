"""The ``ponita`` command: help texts, task listing, ``ponita test`` dispatch and JSON, ``ponita md``, a tiny ``ponita train``."""

import json

import pytest
import torch

from ponita.models import PonitaPotential, save_model
from ponita.train.cli import main


@pytest.mark.parametrize(
    "command",
    [[], ["train"], ["train", "md17"], ["train", "nbody"], ["train", "qm9"], ["train", "qm9-edm"], ["test"], ["md"],
     ["data"], ["data", "nbody"], ["data", "qm9"], ["sample"], ["evaluate-molecules"], ["demo"]],
)
def test_help_works_for_every_command(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ponita" in capsys.readouterr().out


def test_train_list_shows_the_tasks_and_their_presets(capsys) -> None:
    assert main(["train", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "md17" in printed and "--preset quick" in printed and "--preset paper  (default)" in printed


@pytest.fixture
def potential(tmp_path):
    model = PonitaPotential([1, 6, 8], {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}, 1000.0,
                            hidden_dim=8, num_layers=1, num_ori=4)
    train_config = {"task": "md17", "task_options": {"molecule": "ethanol", "split": 1, "data_dir": None, "num_val": 50}}
    return save_model(model, tmp_path / "potential.pt", task="md17", train_config=train_config,
                      protocol="rMD17 ethanol, split 01: train on 950 frames of train_01")


def test_ponita_test_prints_both_protocols_and_writes_the_json_keys(potential, tmp_path, capsys) -> None:
    out = tmp_path / "scores.json"
    assert main(["test", str(potential), "--json", str(out), "--rotations", "1"]) == 0
    scores = json.loads(out.read_text())
    assert {"energy_mae_meV", "forces_mae_meV_per_A", "trained_on", "tested_on"} <= set(scores)
    assert {"rotation_averaged_energy_mae_meV", "rotation_averaged_forces_mae_meV_per_A"} <= set(scores)
    assert scores["trained_on"] == "rMD17 ethanol, split 01: train on 950 frames of train_01"
    assert scores["tested_on"] == "rMD17 ethanol: the 1000 frames of test_01"
    assert scores["num_frames"] == 1000
    printed = capsys.readouterr().out
    assert "Trained on: rMD17 ethanol, split 01" in printed and "force MAE (meV/Å)" in printed


def test_ponita_test_help_of_a_checkpoint_lists_its_task_options(potential, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["test", str(potential), "--help"])
    assert exit_info.value.code == 0
    assert "--rotations" in capsys.readouterr().out


def test_a_checkpoint_of_ponita_0_1_still_tests(tmp_path, capsys) -> None:
    model = PonitaPotential([1, 6, 8], {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}, 1000.0,
                            hidden_dim=8, num_layers=1, num_ori=4)
    legacy = {
        "format": "ponita-potential/1",
        "config": {"atomic_numbers": [1, 6, 8], "reference_energies": {1: -600_000.0, 6: -200_000.0, 8: -100_000.0},
                   "scale": 1000.0, "hidden_dim": 8, "num_layers": 1, "num_ori": 4},
        "state_dict": model.state_dict(), "dtype": "float32", "versions": {"ponita": "0.1.0", "torch": "2.13.0"},
        "metadata": {"train_config": {"molecule": "ethanol", "split": 1, "hidden_dim": 8}, "protocol": "old"},
    }
    torch.save(legacy, tmp_path / "old.pt")
    assert main(["test", str(tmp_path / "old.pt"), "--json", str(tmp_path / "old.json")]) == 0
    scores = json.loads((tmp_path / "old.json").read_text())
    assert scores["trained_on"] == "old" and scores["num_frames"] == 1000
    assert "single pass" in capsys.readouterr().out


def test_ponita_md_writes_a_trajectory_and_reports_the_drift(potential, tmp_path, capsys) -> None:
    out = tmp_path / "traj.xyz"
    command = ["md", str(potential), "--from-data", "ethanol", "--steps", "10", "--out", str(out), "--float64"]
    assert main(command) == 0
    assert out.is_file() and "max |E_tot - E_tot(0)|" in capsys.readouterr().out


def test_ponita_bench_md_times_eager_and_compiled_and_writes_json(potential, tmp_path, capsys, monkeypatch) -> None:
    import ponita.models._calculator as calculator_module
    from ponita.models import compile_energy_and_forces

    monkeypatch.setattr(calculator_module, "compile_energy_and_forces",  # the trace without Inductor's codegen
                        lambda energy, pos: compile_energy_and_forces(energy, pos, backend="aot_eager"))
    out = tmp_path / "bench.json"
    command = ["bench", "md", str(potential), "--from-data", "ethanol", "--steps", "5", "--frames", "2", "--json", str(out)]
    assert main(command) == 0
    rows = json.loads(out.read_text())["results"]
    assert [row["mode"] for row in rows] == ["eager", "compiled"]
    assert all(row["md_steps_per_s"] > 0 and row["inference_ms"] > 0 and row["num_atoms"] == 9 for row in rows)
    assert rows[0]["md_drift_eV"] == pytest.approx(rows[1]["md_drift_eV"], rel=1e-3, abs=1e-6)  # same dynamics
    assert "MD steps/s" in capsys.readouterr().out


def test_ponita_train_runs_end_to_end_and_rejects_bad_overrides(tmp_path, capsys) -> None:
    output = tmp_path / "run"
    tiny = ["compile_step=false", "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "max_epochs=1", "num_val=996",
            "max_time_minutes=null", "lr_horizon=epochs", "num_threads=null"]
    assert main(["train", "md17", "--preset", "quick", "--output", str(output), *tiny]) == 0
    printed = capsys.readouterr().out
    assert "single pass" in printed and str(output / "potential.pt") in printed
    last = str(output / "checkpoints" / "last.ckpt")
    assert main(["train", "md17", "--resume", last, "--output", str(output), "max_epochs=2"]) == 0
    assert f"Resuming {last} with its stored config\n  changed: max_epochs: 1 → 2\n" in capsys.readouterr().out
    assert main(["train", "md17", "--output", str(tmp_path / "other"), "hiden_dim=8"]) == 2
    assert "Unknown config key(s) ['hiden_dim']" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
