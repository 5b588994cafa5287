"""Compiled training steps (``compile_step``, :class:`CompiledLoss`): the eager step's loss and gradients, one
graph per batch structure, parameters and buffers as inputs, and clear errors where it cannot work."""

import csv
import logging

import pytest
import torch
from torch_geometric.data import Batch

from ponita.datasets import fit_atomic_reference_energies, force_rms, load_rmd17
from ponita.models import PonitaPotential
from ponita.train import CompiledLoss, MD17Task, TrainConfig, fit, load_config


@pytest.fixture(scope="module")
def frames():
    return load_rmd17("ethanol", "train")[:6]


def _task(tmp_path, *overrides: str) -> MD17Task:
    return MD17Task(load_config("md17", "quick", overrides=[
        "hidden_dim=16", "num_layers=2", "num_ori=4", "basis_dim=8", "batch_size=2", "lr=5e-3", "warmup_epochs=0",
        "max_time_minutes=null", "lr_horizon=epochs", "accelerator=cpu", "num_threads=1", "seed=0",
        f"output={tmp_path}", *overrides,
    ]))


def _potential(frames, radius: float | None) -> PonitaPotential:
    torch.manual_seed(0)
    energies = fit_atomic_reference_energies(frames)
    model = PonitaPotential(sorted(energies), energies, force_rms(frames), hidden_dim=8, num_layers=2, num_ori=4,
                            basis_dim=8, radius=radius).double()
    model.calibrate(Batch.from_data_list(frames[:2]))
    return model


def _eager(task, model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss = task.loss(model, batch)
    return loss.detach(), list(torch.autograd.grad(loss, list(model.parameters())))


def _compiled(compiled, task, model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = compiled(model, task.static_batch(model, batch))
    loss.backward()
    return loss.detach(), [parameter.grad.clone() for parameter in model.parameters()]


def _assert_same(compiled: tuple, eager: tuple) -> None:
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-10, atol=0)
    for got, expected in zip(compiled[1], eager[1]):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("radius", [None, 2.0], ids=["fully-connected", "radius-2A"])
def test_compiled_loss_gives_the_eager_loss_and_gradients(frames, tmp_path, radius) -> None:
    # With a 2 Å radius ethanol has pairs beyond the cutoff: the static (fully connected) graph of the
    # compiled step must give the radius graph's loss and gradients, forces' second derivatives included.
    task, model = _task(tmp_path), _potential(frames, radius)
    compiled = CompiledLoss(task.loss, backend="aot_eager")
    batch = Batch.from_data_list(frames[:2])
    _assert_same(_compiled(compiled, task, model, batch), _eager(task, model, batch))


def test_one_graph_per_structure_with_the_current_weights_and_buffers(frames, tmp_path) -> None:
    task, model = _task(tmp_path), _potential(frames, radius=2.0)
    compiled = CompiledLoss(task.loss, backend="aot_eager")
    _compiled(compiled, task, model, Batch.from_data_list(frames[:2]))
    with torch.no_grad():  # an optimiser step and a changed buffer: both are graph inputs, not constants
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
        model.scale.mul_(1.5)
    other = Batch.from_data_list(frames[2:4])  # new positions and targets, same structure
    _assert_same(_compiled(compiled, task, model, other), _eager(task, model, other))
    assert len(compiled._graphs) == 1
    three = Batch.from_data_list(frames[:3])  # a shorter or longer batch is a new structure
    _assert_same(_compiled(compiled, task, model, three), _eager(task, model, three))
    assert len(compiled._graphs) == 2


def test_too_many_structures_fall_back_to_eager_steps(frames, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr("ponita.train._compiled_step.MAX_STRUCTURES", 1)
    task, model = _task(tmp_path), _potential(frames, radius=None)
    compiled = CompiledLoss(task.loss, backend="aot_eager")
    _compiled(compiled, task, model, Batch.from_data_list(frames[:2]))
    three = Batch.from_data_list(frames[:3])
    with caplog.at_level(logging.WARNING):
        result = _compiled(compiled, task, model, three)
    assert "without compiled steps" in caplog.text and len(compiled._graphs) == 1
    _assert_same(result, _eager(task, model, three))


def _losses(result) -> list[float]:
    with open(result.metrics_csv) as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


def test_training_with_compile_step_follows_the_eager_run(frames, tmp_path, monkeypatch) -> None:
    # Inductor, as `compile_step: true` runs it: the per-epoch training losses of a short float32 run
    # (radius graph, clipping, EMA and all) agree with the eager run's up to round-off.
    compiled_graphs = []
    compile_graph = CompiledLoss._compile
    monkeypatch.setattr(CompiledLoss, "_compile", lambda self, *args: compiled_graphs.append(1) or compile_graph(self, *args))
    runs = {}
    for compile_step in (False, True):
        task = _task(tmp_path / str(compile_step), "max_epochs=3", "radius=2.0", f"compile_step={compile_step}")
        runs[compile_step] = _losses(fit(task, frames[:4], frames[4:6]))
    assert len(runs[True]) == 3 and len(compiled_graphs) == 1  # 4 frames in batches of 2: one structure
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)


def test_compile_step_errors(frames, tmp_path) -> None:
    with pytest.raises(ValueError, match="compile_step runs on one process"):
        TrainConfig(task="md17", compile_step=True, devices=2)
    task = _task(tmp_path, "compile_step=true", "radius=2.0", "space=R3xS2-lifted", "num_ori=null")  # points made from the edges
    with pytest.raises(ValueError, match="compile_step needs batches whose graph does not depend on the positions"):
        fit(task, frames[:4], frames[4:6])
