"""The ``ponita`` command: help texts, errors, ``ponita test`` JSON output, ``ponita md`` and a tiny ``ponita train``."""

import json

import pytest

from ponita.models import PonitaPotential, save_potential
from ponita.train.cli import main


@pytest.mark.parametrize("command", [[], ["train"], ["train", "md17"], ["test"], ["md"], ["demo"]])
def test_help_works_for_every_command(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ponita" in capsys.readouterr().out


@pytest.fixture
def potential(tmp_path):
    model = PonitaPotential([1, 6, 8], {1: -600_000.0, 6: -200_000.0, 8: -100_000.0}, 1000.0,
                            hidden_dim=8, num_layers=1, num_ori=4)
    train_config = {"molecule": "ethanol", "split": 1, "data_dir": None, "num_val": 50}
    return save_potential(model, tmp_path / "potential.pt", train_config=train_config)


def test_ponita_test_prints_a_table_and_writes_the_json_keys(potential, tmp_path, capsys) -> None:
    out = tmp_path / "scores.json"
    assert main(["test", str(potential), "--json", str(out), "--rotations", "1"]) == 0
    scores = json.loads(out.read_text())
    assert {"energy_mae_meV", "forces_mae_meV_per_A", "protocol"} <= set(scores)
    assert {"rotation_averaged_energy_mae_meV", "rotation_averaged_forces_mae_meV_per_A"} <= set(scores)
    assert "950 frames of train_01" in scores["protocol"] and "1000 frames of test_01" in scores["protocol"]
    assert scores["num_frames"] == 1000
    assert "force MAE (meV/Å)" in capsys.readouterr().out


def test_ponita_md_writes_a_trajectory_and_reports_the_drift(potential, tmp_path, capsys) -> None:
    out = tmp_path / "traj.xyz"
    command = ["md", str(potential), "--from-data", "ethanol", "--steps", "10", "--out", str(out), "--float64"]
    assert main(command) == 0
    assert out.is_file() and "max |E_tot - E_tot(0)|" in capsys.readouterr().out


def test_ponita_train_runs_end_to_end_and_rejects_bad_overrides(tmp_path, capsys) -> None:
    output = tmp_path / "run"
    tiny = ["hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "max_epochs=1", "num_val=996",
            "max_time_minutes=null", "num_threads=null"]
    assert main(["train", "md17", "--preset", "quick", "--output", str(output), *tiny]) == 0
    printed = capsys.readouterr().out
    assert "single pass" in printed and str(output / "potential.pt") in printed
    assert main(["train", "md17", "--output", str(tmp_path / "other"), "hiden_dim=8"]) == 2
    assert "Unknown config key(s) ['hiden_dim']" in capsys.readouterr().err
