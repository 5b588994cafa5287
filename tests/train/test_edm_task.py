"""The qm9-edm task and ``ponita sample``: a tiny run trains and samples; the CLI writes SDF/XYZ, is reproducible
and rejects bad input."""

import importlib.util
import json

import numpy as np
import pytest

from ponita.datasets import process_qm9, read_molecules, read_qm9pack_rows
from ponita.train import EDMTask, fit, load_config
from ponita.train.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="needs pip install 'ponita[qm9]'")


def _tiny_qm9(patch):
    small = process_qm9(read_qm9pack_rows()[:200])
    split = {"train": np.arange(120), "valid": np.arange(120, 160), "test": np.arange(160, 200)}
    patch.setattr("ponita.train._qm9.load_qm9", lambda data_dir=None: small)
    patch.setattr("ponita.train._qm9.qm9_split", lambda num, scheme: split)


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    """A generator trained for two epochs on 120 small QM9 molecules (T = 30)."""
    small = process_qm9(read_qm9pack_rows()[:200])
    split = {"train": np.arange(120), "valid": np.arange(120, 160), "test": np.arange(160, 200)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ponita.train._qm9.load_qm9", lambda data_dir=None: small)
        patch.setattr("ponita.train._qm9.qm9_split", lambda num, scheme: split)
        output = tmp_path_factory.mktemp("edm") / "run"
        overrides = [f"output={output}", "hidden_dim=16", "num_layers=2", "num_ori=6", "basis_dim=16", "steps=30",
                     "max_epochs=2", "batch_size=20", "precision=32-true", "num_samples=8", "max_time_minutes=null",
                     "lr_horizon=epochs", "compile_step=false",
                     "probe_every_minutes=0.0002", "probe_molecules=4", "probe_steps=5"]
        task = EDMTask(load_config("qm9-edm", "quick", overrides=overrides))
        result = fit(task, *task.train_val_data(), task.test_data())
    return result


def test_a_tiny_run_trains_tests_by_sampling_and_stores_the_size_histogram(generator_file) -> None:
    metrics = generator_file.test_metrics
    assert metrics["num_molecules"] == 8 and metrics["sample_steps"] == 30 and metrics["test_noise_mse"] > 0
    assert 0 <= metrics["molecule_stability"] <= 1 and metrics["seconds_per_molecule"] > 0
    counts = json.loads(generator_file.test_json.read_text())
    assert counts["trained_on"].startswith("QM9 with hydrogens, EDM split")


def test_the_run_logs_its_probes_against_training_hours(generator_file) -> None:
    from ponita.train._probe import read_probes

    rows = read_probes(generator_file.output / "logs" / "probe.csv")
    assert len(rows) >= 2
    hours = [row["train_hours"] for row in rows]
    assert hours == sorted(hours) and all(0.0002 / 60 <= h for h in hours)
    for row in rows:
        assert set(row) == {"train_hours", "epoch", "step", "probe_seconds", "molecule_stability", "atom_stability",
                            "validity", "denoising_error", "non_finite", "radius_of_gyration"}
        assert 0 <= row["non_finite"] <= 1 and row["radius_of_gyration"] > 0
        assert all(0 <= row[key] <= 1 for key in ("molecule_stability", "atom_stability", "validity"))
        assert 0 < row["denoising_error"] < 10  # Å


def test_sample_writes_reproducible_sdf_and_xyz_with_metrics(generator_file, tmp_path, capsys) -> None:
    sdf, again, xyz = tmp_path / "a.sdf", tmp_path / "b.sdf", tmp_path / "c.xyz"
    argv = ["sample", str(generator_file.model), "-n", "6", "--steps", "10", "-o", str(sdf), "--metrics",
            "--image", str(tmp_path / "grid.png")]
    assert main(argv) == 0 and (tmp_path / "grid.png").is_file()
    assert main(["sample", str(generator_file.model), "-n", "6", "--steps", "10", "-o", str(again)]) == 0
    assert sdf.read_bytes() == again.read_bytes()  # same seed, same molecules
    assert main(["sample", str(generator_file.model), "-n", "3", "--n-atoms", "7", "--steps", "5", "-o", str(xyz)]) == 0
    assert [len(m.types) for m in read_molecules(str(xyz))] == [7, 7, 7] and len(read_molecules(str(sdf))) == 6
    metrics = json.loads(sdf.with_suffix(".json").read_text())
    assert metrics["num_molecules"] == 6 and metrics["steps"] == 10 and metrics["spacing"] == 2.0
    uniform = tmp_path / "uniform.sdf"
    argv = ["sample", str(generator_file.model), "-n", "6", "--steps", "10", "--spacing", "1", "-o", str(uniform)]
    assert main(argv) == 0
    assert uniform.read_bytes() != sdf.read_bytes()  # other times, other molecules
    assert main(["evaluate-molecules", str(sdf)]) == 0 and "molecule stability" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-n", "0"], "-n and --batch-size must be ≥ 1"),
        (["--steps", "31"], "--steps must lie in 1..30"),
        (["--n-atoms", "0"], "--n-atoms in 1..100"),
        (["-o", "out.pdb"], "must be a .sdf or .xyz file"),
        (["--image", "grid.jpg"], "must be a .png file"),
        (["--spacing", "0"], "--spacing must be a finite number > 0"),
        (["--sigma-max", "0"], "--sigma-max must be a finite number > 0"),
        (["--sampler", "heun"], "--sampler heun does not fit this generator (objective 'vp')"),
        (["--guide", "weaker.pt"], "--guide guides the Heun sampler of 'karras' generators"),
    ],
)
def test_sample_rejects_bad_arguments_before_sampling(generator_file, tmp_path, monkeypatch, capsys, arguments, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(generator_file.model), *arguments]) == 2
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_sample_rejects_a_checkpoint_that_is_not_a_generator(tmp_path, capsys) -> None:
    from ponita.models import PonitaPotential, save_model

    potential = save_model(PonitaPotential([1], {1: 0.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4), tmp_path / "p.pt")
    assert main(["sample", str(potential), "-o", str(tmp_path / "x.sdf")]) == 2
    assert "holds an interatomic potential (PonitaPotential), not a generator" in capsys.readouterr().err


def test_a_karras_generator_trains_tests_without_nll_and_samples_with_heun(tmp_path, capsys) -> None:
    with pytest.MonkeyPatch.context() as patch:
        _tiny_qm9(patch)
        # The preset's compile_step: the network compiled for all sizes (no code generation in the test).
        patch.setattr("ponita.train._lightning_module.DYNAMIC_COMPILE_BACKEND", "aot_eager")
        overrides = [f"output={tmp_path / 'run'}", "hidden_dim=16", "num_layers=2", "num_ori=6", "basis_dim=16",
                     "objective=karras", "max_epochs=1", "batch_size=20", "precision=32-true", "num_samples=4",
                     "sample_steps=3", "max_time_minutes=null", "lr_horizon=epochs"]
        task = EDMTask(load_config("qm9-edm", "quick", overrides=overrides))
        result = fit(task, *task.train_val_data(), task.test_data())
    assert result.test_metrics["test_nll"] is None and result.test_metrics["sample_steps"] == 3
    assert "test NLL" not in EDMTask.format_metrics(result.test_metrics)
    out = tmp_path / "k.xyz"
    assert main(["sample", str(result.model), "-n", "3", "--steps", "4", "-o", str(out), "--churn", "0"]) == 0
    assert len(read_molecules(str(out))) == 3
    assert main(["sample", str(result.model), "--sampler", "ddim", "-o", str(tmp_path / "x.xyz")]) == 2
    assert "does not fit this generator (objective 'karras'); use heun" in capsys.readouterr().err
    # Guided by itself (autoguidance's D_g + w (D - D_g) = D): the same molecules, the guidance in the metrics.
    guided = tmp_path / "g.xyz"
    argv = ["sample", str(result.model), "-n", "3", "--steps", "4", "--churn", "0",
            "--guide", str(result.model), "--guidance", "3", "--guidance-range", "0", "1", "--guide-features"]
    assert main([*argv, "-o", str(guided)]) == 0 and guided.read_bytes() == out.read_bytes()
    assert main([*argv, "-o", str(tmp_path / "g.sdf"), "--metrics"]) == 0
    metrics = json.loads((tmp_path / "g.json").read_text())
    assert metrics["guidance"] == 3.0 and metrics["guidance_range"] == [0.0, 1.0] and metrics["guide_features"]
    # bf16 matrix products (autocast): reproducible with a seed, recorded in the metrics; auto says what it chose.
    bf16, again = tmp_path / "b.sdf", tmp_path / "b2.sdf"
    argv = ["sample", str(result.model), "-n", "3", "--steps", "4", "--precision", "bf16"]
    assert main([*argv, "-o", str(bf16), "--metrics"]) == 0 and main([*argv, "-o", str(again)]) == 0
    assert bf16.read_bytes() == again.read_bytes() and json.loads(bf16.with_suffix(".json").read_text())["precision"] == "bf16"
    capsys.readouterr()
    assert main(["sample", str(result.model), "-n", "1", "--steps", "2", "--precision", "auto", "-o",
                 str(tmp_path / "auto.xyz")]) == 0
    chosen = capsys.readouterr().out
    assert "precision: fp32 (auto: bf16 GEMM" in chosen or "precision: bf16 (auto: bf16 GEMM" in chosen, chosen
    for arguments, message in [(["--guide", str(result.test_json)], "checkpoint"),
                               (["--guide", str(result.model), "--guidance", "nan"], "--guidance must be a finite"),
                               (["--guide", str(result.model), "--guidance-range", "1", "0"], "0 ≤ LOW ≤ HIGH")]:
        capsys.readouterr()
        assert main(["sample", str(result.model), "-o", str(tmp_path / "y.xyz"), *arguments]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "y.xyz").exists()


def test_compile_step_compiles_the_denoiser_once_for_all_sizes_with_the_same_training(tmp_path, monkeypatch) -> None:
    """Batches of molecules of different sizes: compile_step compiles the network with dynamic shapes (one
    graph, no recompilation per size) and trains to the same weights as eager steps, up to round-off."""
    import torch._dynamo

    _tiny_qm9(monkeypatch)
    monkeypatch.setattr("ponita.train._lightning_module.DYNAMIC_COMPILE_BACKEND", "aot_eager")  # no codegen

    def run(name: str, compile_step: bool):
        overrides = [f"output={tmp_path / name}", "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8",
                     "max_epochs=1", "batch_size=20", "precision=32-true", "max_time_minutes=null",
                     "lr_horizon=epochs", "num_train=60", "num_val=20", "objective=karras",
                     f"compile_step={str(compile_step).lower()}"]
        task = EDMTask(load_config("qm9-edm", "quick", overrides=overrides))
        return torch.load(fit(task, *task.train_val_data()).last_checkpoint, weights_only=False)["state_dict"]

    eager = run("eager", False)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = run("compiled", True)
    assert torch._dynamo.utils.counters["frames"]["total"] == 1  # three batch sizes, one compiled graph
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    for name, tensor in eager.items():
        torch.testing.assert_close(compiled[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
