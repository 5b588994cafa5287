"""A two-process DDP run on CPU (gloo), launched by Lightning from a script in a subprocess.

Both ranks write their model and EMA state dicts after calibration and after training; they must be
bit-identical. Without the all-reduce in ``global_std`` the calibrated conv weights already differ
(checked by hand), because each rank calibrates on its own shard."""

import subprocess
import sys
import textwrap

import torch

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import pytorch_lightning as pl
    import torch
    from ponita.datasets import load_rmd17
    from ponita.train import MD17Task, fit, load_config


    class SaveStates(pl.Callback):
        # Writes each rank's model and EMA state dicts after calibration (the module's on_train_start
        # runs after the callbacks' hook, so this waits for the first batch) and at the end of training.

        def __init__(self, folder):
            self.folder = Path(folder)

        def _save(self, trainer, module, stage, **extra):
            state = {
                "model": {k: v.detach().clone() for k, v in module.model.state_dict().items()},
                "ema": {k: v.detach().clone() for k, v in module.ema.state_dict().items()},
                "global_step": trainer.global_step,
                **extra,
            }
            torch.save(state, self.folder / f"rank{trainer.global_rank}_{stage}.pt")

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 0 and batch_idx == 0:
                calibration = trainer.datamodule.calibration_batch()
                self._save(trainer, module, "after_calibration", calibration_pos=calibration.pos.clone())

        def on_train_end(self, trainer, module):
            self._save(trainer, module, "after_training")


    frames = load_rmd17("ethanol", "train")[:12]
    config = load_config("md17", "quick", overrides=[
        "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "batch_size=2", "max_epochs=2",
        "max_time_minutes=null", "lr_horizon=epochs", "accelerator=cpu", "devices=2", "strategy=ddp", "num_threads=1",
        "compile_step=false",
        f"output={sys.argv[1]}",
    ])
    result = fit(MD17Task(config), frames[:8], frames[8:10], frames[10:12], callbacks=[SaveStates(sys.argv[2])])
    if result.model is not None:
        print("RANK0", result.test_metrics["forces_mae_meV_per_A"], flush=True)
    """
)


def _assert_same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], what: str) -> None:
    assert first.keys() == second.keys(), what
    for key in first:
        assert torch.equal(first[key], second[key]), f"{what}: {key} differs between the ranks"


def test_two_process_ddp_training_on_cpu_keeps_identical_weights_on_both_ranks(tmp_path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    states = tmp_path / "states"
    states.mkdir()
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(states)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("RANK0") == 1
    assert (tmp_path / "run" / "potential.pt").is_file()

    ranks = [
        {stage: torch.load(states / f"rank{rank}_{stage}.pt") for stage in ("after_calibration", "after_training")}
        for rank in (0, 1)
    ]
    # Each rank calibrates on its own shard, so identical weights need the pooled (all-reduced) statistics.
    first_shard, second_shard = (rank["after_calibration"]["calibration_pos"] for rank in ranks)
    assert not torch.equal(first_shard, second_shard)
    for stage, steps in (("after_calibration", 0), ("after_training", 4)):  # 8 frames / (2 ranks × 2) × 2 epochs
        assert ranks[0][stage]["global_step"] == ranks[1][stage]["global_step"] == steps
        for part in ("model", "ema"):
            _assert_same_state(ranks[0][stage][part], ranks[1][stage][part], f"{part} {stage}")
    # Training moved the weights, and EMA differs from the model, so the comparison is not vacuous.
    calibrated, trained = ranks[0]["after_calibration"]["model"], ranks[0]["after_training"]["model"]
    assert any(not torch.equal(calibrated[key], trained[key]) for key in calibrated)
    assert any(not torch.equal(trained[key], ranks[0]["after_training"]["ema"][key]) for key in trained)
