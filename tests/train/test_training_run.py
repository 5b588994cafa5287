"""Training with Lightning: the loss goes down, outputs are written, and a resumed run is exact."""

import csv
import json
import os
import signal
import time
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch_geometric.data import Batch, Data

from ponita.datasets import load_rmd17
from ponita.models import load_potential, read_checkpoint
from ponita.train import _probe
from ponita.train import EpochSampler, MD17Task, RotatedFrames, cosine_with_warmup, fit, load_config
from ponita.train._run import grow_model

# Adam: on 8 frames and a few dozen steps Muon (the preset's) stays on the initial plateau longer.
TINY = ["compile_step=false", "optimizer=adam", "ema_decay=0.5", "hidden_dim=8", "num_layers=1", "num_ori=4",
        "basis_dim=8", "batch_size=2", "warmup_epochs=0", "max_time_minutes=null", "lr_horizon=epochs", "accelerator=cpu",
        "num_threads=null", "test_batch_size=10"]


@pytest.fixture(scope="module")
def frames() -> list[Data]:
    return load_rmd17("ethanol", "train")[:16]


def tiny_task(output, *overrides: str) -> MD17Task:
    return MD17Task(load_config("md17", "quick", overrides=[*TINY, f"output={output}", *overrides]))


def train_losses(metrics_csv) -> list[float]:
    with open(metrics_csv, newline="") as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


def test_training_lowers_the_loss_and_writes_its_outputs(frames: list[Data], tmp_path) -> None:
    overrides = ["max_epochs=40", "lr=1e-2", "hidden_dim=16", "num_layers=2", "basis_dim=16", "batch_size=4"]
    task = tiny_task(tmp_path / "run", *overrides)
    result = fit(task, frames[:8], frames[12:14], frames[14:16], protocol="tiny", test_protocol="two frames")
    losses = train_losses(result.metrics_csv)
    assert len(losses) == 40 and losses[-1] < 0.9 * losses[0]
    for path in (result.model, result.best_checkpoint, result.last_checkpoint, result.learning_curve,
                 result.test_json, tmp_path / "run" / "config.yaml"):
        assert path.is_file()
    assert result.model.name == "potential.pt"
    scores = json.loads(result.test_json.read_text())
    assert scores["num_frames"] == 2 and scores["forces_mae_meV_per_A"] > 0
    assert (scores["trained_on"], scores["tested_on"]) == ("tiny; trained in 32-true", "two frames")
    assert load_potential(result.model).calibrated
    saved = read_checkpoint(result.model)
    assert saved.task == "md17" and saved.metadata["protocol"] == "tiny; trained in 32-true"
    assert saved.metadata["train_config"] == task.config.as_dict()
    assert set(saved.metadata["statistics"]) == {"reference_energies", "force_rms"}


@pytest.mark.parametrize("optimizer", [["optimizer=adam"], ["optimizer=muon", "hidden_dim=16"]], ids=["adam", "muon"])
def test_resumed_run_matches_an_uninterrupted_run(frames: list[Data], tmp_path, stop_after_epochs, optimizer) -> None:
    straight = fit(tiny_task(tmp_path / "a", "max_epochs=4", *optimizer), frames[:8], frames[8:10])
    task = tiny_task(tmp_path / "b", "max_epochs=4", *optimizer)
    interrupted = fit(task, frames[:8], frames[8:10], callbacks=[stop_after_epochs(2)])
    assert torch.load(interrupted.last_checkpoint, weights_only=False)["epoch"] == 1
    resumed = fit(task, frames[:8], frames[8:10], resume=interrupted.last_checkpoint)
    a = torch.load(straight.last_checkpoint, weights_only=False)
    b = torch.load(resumed.last_checkpoint, weights_only=False)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (3, 16)
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    for state_a, state_b in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)
    assert a["lr_schedulers"] == b["lr_schedulers"]


def test_new_run_refuses_an_output_folder_with_checkpoints(frames: list[Data], tmp_path) -> None:
    task = tiny_task(tmp_path, "max_epochs=1")
    fit(task, frames[:4], frames[4:6])
    with pytest.raises(ValueError, match="already holds the checkpoints of a run. Continue it with --resume"):
        fit(task, frames[:4], frames[4:6])


def test_epoch_sampler_depends_only_on_seed_and_epoch_and_shards_disjointly() -> None:
    sampler = EpochSampler(10, seed=3)
    sampler.set_epoch(2)
    first = list(sampler)
    sampler.set_epoch(0)
    sampler.set_epoch(2)
    assert list(sampler) == first and sorted(i for i, _ in first) == list(range(10))
    ranks = [EpochSampler(10, seed=3, rank=rank, world_size=3) for rank in range(3)]
    shards = [[i for i, _ in rank] for rank in ranks]
    assert all(len(shard) == 3 for shard in shards) and len(set(sum(shards, []))) == 9


def test_rotated_frames_rotate_positions_and_forces_together(frames: list[Data]) -> None:
    frame = frames[0]
    rotated = RotatedFrames(frames)[(0, 123)]
    rotation = torch.linalg.lstsq(frame.pos - frame.pos.mean(0), rotated.pos - rotated.pos.mean(0)).solution  # [3, 3]
    assert torch.allclose(rotation.T @ rotation, torch.eye(3, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(frame.forces @ rotation, rotated.forces, atol=1e-6)
    assert torch.equal(rotated.energy, frame.energy) and not torch.equal(rotated.pos, frame.pos)


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    assert cosine_with_warmup(0, 10, 100) == 0.0
    assert cosine_with_warmup(10, 10, 100) == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(0.1 * torch.pi)).item()))
    assert cosine_with_warmup(100, 10, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_with_warmup(0, 0, 100) == 1.0


@pytest.mark.parametrize("precision, dtype", [("64-true", torch.float64), ("bf16-mixed", torch.float32)])
def test_training_runs_in_other_precisions(frames: list[Data], tmp_path, precision: str, dtype: torch.dtype) -> None:
    result = fit(tiny_task(tmp_path, "max_epochs=1", f"precision={precision}"), frames[:4], frames[4:6], frames[6:8])
    assert load_potential(result.model).network.embedding.weight.dtype == dtype
    assert result.test_metrics["forces_mae_meV_per_A"] > 0


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gradient_clipping_bounds_the_update(frames: list[Data], tmp_path, precision: str) -> None:
    def weights_after_one_epoch(name: str, lr: str, clip: str) -> torch.Tensor:
        task = tiny_task(tmp_path / name, "max_epochs=1", f"lr={lr}", f"gradient_clip={clip}", f"precision={precision}",
                         "ema_decay=0.0")  # the saved (EMA) weights are the trained ones
        result = fit(task, frames[:4], frames[4:6])
        return torch.cat([p.detach().flatten() for p in load_potential(result.model).parameters()])

    start = weights_after_one_epoch("start", "1e-12", "null")  # calibrated, (almost) untrained
    free = weights_after_one_epoch("free", "1e-2", "null")
    clipped = weights_after_one_epoch("clipped", "1e-2", "1e-12")  # gradients far below Adam's eps: tiny steps
    assert (free - start).abs().max() > 1e-3
    assert (clipped - start).abs().max() < 1e-4


def test_potential_reference_energies_are_refit_after_training(frames: list[Data], tmp_path) -> None:
    task = tiny_task(tmp_path / "run", "max_epochs=2")
    result = fit(task, frames[:8], frames[8:10])
    saved = read_checkpoint(result.model)
    note = saved.metadata["finalized"]
    model = load_potential(result.model)
    batch = Batch.from_data_list(frames[:8])
    energy, forces = model(batch)
    residual = batch.energy - energy.detach().double()  # [8]
    assert abs(float(residual.mean())) < 1e-6 * float(batch.energy.abs().mean())  # the offset is gone
    assert abs(note["mean_train_energy_residual_meV"]) > 1.0  # ... and there was one to remove
    unshifted = load_potential(result.model)
    unshifted.shift_reference_energies_({z: -delta for z, delta in note["reference_energy_shift_meV"].items()})
    assert torch.equal(unshifted(batch)[1], forces)  # forces do not change
    with pytest.raises(ValueError, match=r"\[7\]"):
        model.shift_reference_energies_({7: 1.0})


def test_a_run_paused_mid_epoch_and_resumed_matches_an_uninterrupted_run(frames: list[Data], tmp_path,
                                                                          monkeypatch) -> None:
    """--pause-after: stop after a wall-time budget (here 5 steps of a fake clock: mid-epoch), then resume."""
    straight = fit(tiny_task(tmp_path / "a", "max_epochs=3"), frames[:8], frames[8:10])
    clock = iter(range(1_000_000))
    fake_time = SimpleNamespace(monotonic=lambda: 60.0 * next(clock), perf_counter=time.perf_counter)
    monkeypatch.setattr(_probe, "time", fake_time)  # a minute per step
    task = tiny_task(tmp_path / "b", "max_epochs=3")
    paused = fit(task, frames[:8], frames[8:10], pause_after_minutes=5)
    assert paused.paused and paused.model is None and paused.test_metrics is None
    state = torch.load(paused.last_checkpoint, weights_only=False)
    assert (state["epoch"], state["global_step"]) == (1, 5)  # 4 steps per epoch: one into the second
    resumed = fit(task, frames[:8], frames[8:10], resume=paused.last_checkpoint)
    assert not resumed.paused and resumed.model.is_file()
    a = torch.load(straight.last_checkpoint, weights_only=False)
    b = torch.load(resumed.last_checkpoint, weights_only=False)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 12)
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    with pytest.raises(ValueError, match="pause_after_minutes must be > 0"):
        fit(tiny_task(tmp_path / "c"), frames[:8], frames[8:10], pause_after_minutes=0)


class SendSignal(pl.Callback):
    """Sends ``signum`` to this process as training step ``step`` begins, or as the first validation begins."""

    def __init__(self, signum: int, step: int | None) -> None:
        self.signum, self.step, self.sent = signum, step, False

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

    def on_validation_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if self.step is None and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum, step, paused_at", [(signal.SIGINT, 5, 6), (signal.SIGTERM, 5, 6),
                                                     (signal.SIGTERM, None, 5)])  # None: in validation
def test_ctrl_c_or_sigterm_pause_a_run_after_a_step_and_it_resumes_exactly(frames: list[Data], tmp_path, signum,
                                                                           step, paused_at) -> None:
    straight = fit(tiny_task(tmp_path / "a", "max_epochs=2"), frames[:8], frames[8:10])
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    task = tiny_task(tmp_path / "b", "max_epochs=2")
    paused = fit(task, frames[:8], frames[8:10], callbacks=[SendSignal(signum, step)])
    assert paused.paused and paused.model is None
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert torch.load(paused.last_checkpoint, weights_only=False)["global_step"] == paused_at  # 4 steps per epoch
    resumed = fit(task, frames[:8], frames[8:10], resume=paused.last_checkpoint)
    a = torch.load(straight.last_checkpoint, weights_only=False)
    b = torch.load(resumed.last_checkpoint, weights_only=False)
    assert not resumed.paused and (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (1, 8)
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name


def test_a_run_can_start_from_a_smaller_trained_model(frames: list[Data], tmp_path) -> None:
    first = fit(tiny_task(tmp_path / "a", "max_epochs=2", "multiple_readouts=false"), frames[:8], frames[8:10])
    task = tiny_task(tmp_path / "b", "max_epochs=1", "multiple_readouts=false", "num_layers=3",
                     f"init_from={first.model}")
    grown = task.build_model(task.statistics(frames[:8]))
    assert "(1 layers → 3, the new blocks starting as the identity)" in grow_model(grown, first.model)
    batch = Batch.from_data_list(frames[10:12])
    (energy, forces), (energy_0, forces_0) = grown.eval()(batch), load_potential(first.model)(batch)
    assert torch.allclose(forces, forces_0, rtol=1e-6, atol=1e-6)  # energies: the run's own reference energies
    assert torch.allclose(energy - energy[0], energy_0 - energy_0[0], atol=1e-6)
    wider = tiny_task(tmp_path / "w", "multiple_readouts=false", "hidden_dim=16").build_model(task.statistics(frames[:8]))
    assert grow_model(wider, first.model).endswith("(8 channels → 16, each copied)")
    result = fit(task, frames[:8], frames[8:10])
    assert read_checkpoint(result.model).config["network"]["num_layers"] == 3
    first.model.unlink()  # a resumed run takes its weights from its checkpoint, not from init_from
    fit(tiny_task(tmp_path / "b", "max_epochs=2", "multiple_readouts=false", "num_layers=3", f"init_from={first.model}"),
        frames[:8], frames[8:10], resume=result.last_checkpoint)
    same_depth = tiny_task(tmp_path / "e", "multiple_readouts=false").build_model(task.statistics(frames[:8]))
    assert grow_model(same_depth, first.last_checkpoint) == f"the network weights of {first.last_checkpoint}"
    ema = torch.load(first.last_checkpoint, weights_only=False)["state_dict"]  # a .ckpt gives its EMA weights
    assert all(torch.equal(value, ema[f"ema.network.{key}"]) for key, value in same_depth.network.state_dict().items())
    for missing in (first.model, tmp_path / "none.ckpt"):
        with pytest.raises(FileNotFoundError):
            fit(tiny_task(tmp_path / "c", "max_epochs=1", f"init_from={missing}"), frames[:8], frames[8:10])
    with pytest.raises(ValueError, match=r"init_from=.* does not fit this run's model: Only num_layers and hidden_dim"):
        fit(tiny_task(tmp_path / "d", "max_epochs=1", "multiple_readouts=false", "basis_dim=16",
                      f"init_from={result.model}"), frames[:8], frames[8:10])
    regrid = tiny_task(tmp_path / "r", "multiple_readouts=false", "num_ori=6").build_model(task.statistics(frames[:8]))
    with pytest.raises(ValueError, match=r"num_ori 4 → 6.*init_regrid=true"):
        grow_model(regrid, first.last_checkpoint)
    assert grow_model(regrid, first.last_checkpoint, regrid=True).endswith(
        "(4 fibonacci directions → 6 fibonacci, the trained kernels on the new grid (a changed function))")
    assert regrid.network.grid.shape[0] == 6
