"""Benchmarks of training steps on the user's machine: what ``ponita bench precision`` measures."""

import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import nn

    from .._config import TrainConfig
    from .._task import Task


def benchmark_setup(task: "Task", samples: Sequence) -> tuple["nn.Module", list, "torch.optim.Optimizer"]:
    """What a benchmark of training steps starts from: a new model of ``task`` (statistics from ``samples``),
    calibrated and in training mode, ``samples`` as full batches of the config's ``batch_size``, and the
    config's optimiser for the model."""
    from .._lightning_module import build_optimizer
    from .._task import data_batches

    model = task.build_model(task.statistics(samples))
    batches = [batch for _, batch in data_batches(samples, task.config.batch_size, drop_last=True)]
    if not batches:
        raise ValueError(f"A benchmark needs at least batch_size={task.config.batch_size} samples, got {len(samples)}.")
    model.calibrate(batches[0])
    return model.train(), batches, build_optimizer(model, task.config)


def benchmark_precisions(config: "TrainConfig", frames: list, steps: int = 20,
                         precisions: tuple[str, ...] = ("32-true", "bf16-mixed")) -> dict[str, float]:
    """Milliseconds per eager md17 training step of ``config``'s potential in each precision (median of 3 blocks).

    The step is what training repeats: energies and forces, the loss's gradients, the optimiser's update,
    under bf16 autocast for ``"bf16-mixed"``; batches of ``config.batch_size`` frames. Eager steps keep the
    benchmark short (a compiled step gains about as much in either precision).

    Returns:
        precision → ms per step.
    """
    from torch_geometric.data import Batch

    from .._md17 import MD17Task

    task = MD17Task(config)
    results = {}
    for precision in precisions:
        torch.manual_seed(config.seed)
        model, batches, optimizer = benchmark_setup(task, frames)

        def step(batch: "Batch") -> None:
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
                loss = task.loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step(batches[0])  # warm-up
        blocks = []
        for block in range(3):
            start = time.perf_counter()
            for i in range(steps):
                step(batches[(block * steps + i) % len(batches)])
            blocks.append(1000 * (time.perf_counter() - start) / steps)
        results[precision] = statistics.median(blocks)
    return results
