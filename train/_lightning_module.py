"""The one Lightning module of every task: the task's loss and metrics, EMA weights, Adam(W) with a cosine schedule."""

import copy
import dataclasses
import math
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer
from torch import Tensor, nn
from torch_geometric.data import Batch
from torchmetrics import MeanMetric

from ._compiled_step import CompiledLoss
from ._config import TrainConfig
from ._machine import PrecisionChoice
from ._muon import MuonAdam, has_fused_adam, muon_parameters
from ._task import Task


def cosine_with_warmup(step: int, warmup_steps: float, total_steps: int, progress: float | None = None) -> float:
    r"""Learning-rate factor :math:`\tfrac12(1 + \cos(\pi p)) \min(1, t / t_w)` at step :math:`t`.

    The progress :math:`p` is :math:`t / T` unless given (e.g. the elapsed fraction of a time budget);
    it is clipped to 1.

    Example:
        >>> cosine_with_warmup(5, 10, 100), cosine_with_warmup(50, 10, 100), cosine_with_warmup(50, 10, 100, 1.2)
        (0.49692208514878444, 0.5, 0.0)
    """
    warmup = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    progress = step / total_steps if progress is None else progress
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * warmup


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` names, over ``model``'s parameters, at ``config.lr``.

    Weight decay applies to weight matrices only (not to biases and scales). ``"adam"`` and ``"adamw"``
    run as PyTorch's fused kernels; ``"muon"`` is :class:`MuonAdam` with Muon on the hidden weight
    matrices (:func:`muon_parameters`) and AdamW on the rest.

    Example:
        >>> from ponita.train import load_config
        >>> model = nn.Sequential(nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1))
        >>> type(build_optimizer(model, load_config("md17", "quick", overrides=["optimizer=muon"]))).__name__
        'MuonAdam'
    """
    if config.optimizer == "muon":
        hidden, rest = muon_parameters(model)
        groups = [{"params": hidden, "weight_decay": config.weight_decay, "muon": True},
                  {"params": [p for p in rest if p.dim() >= 2], "weight_decay": config.weight_decay},
                  {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}]
        return MuonAdam([group for group in groups if group["params"]], lr=config.lr, decoupled=True)
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    # The fused kernel updates all parameters at once (0.2 instead of 1.6 ms a step for a small potential).
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=config.lr, fused=has_fused_adam(model.parameters()) or None)


DYNAMIC_COMPILE_BACKEND = "inductor"
"""``torch.compile`` backend of :meth:`TaskModule.compile_network` (tests use ``"aot_eager"``)."""


class TaskModule(pl.LightningModule):
    """Trains a task's model and keeps an exponential moving average of its weights.

    Training minimises ``task.loss(model, batch)``; validation, the checkpointed ``ema`` weights and the
    exported model use ``self.ema``, updated after every optimiser step as
    ``ema ← decay · ema + (1 − decay) · model`` (buffers are copied). With ``compile_step`` the loss and
    its gradients come from a compiled graph (:class:`CompiledLoss`) of the task's :meth:`~Task.static_batch`,
    or, for tasks whose batches change structure, the model's network is compiled (:meth:`compile_network`).
    Before the first step the model is calibrated once on the first training batch (:meth:`on_train_start`);
    a resumed run is already calibrated and skips this. Validation metrics are the means of
    ``task.validation_errors`` over all elements of the validation set, pooled over processes.

    The optimiser comes from :func:`build_optimizer`; gradient clipping (``gradient_clip``) is done here,
    before each optimiser step. The learning rate follows :func:`cosine_with_warmup`, updated every optimiser
    step, with ``warmup_epochs`` and the horizon ``max_epochs`` converted to steps (a fractional epoch is
    allowed).

    Args:
        task: the task (its config holds the optimiser, schedule and EMA settings).
        model: the zoo model to train.
        statistics: the training statistics the model was built from (stored in every checkpoint).
        protocol: what the model is trained on (stored in every checkpoint).
        precision: the precision the trainer runs in and why (``config.precision`` unless given; the run
            header prints it).
    """

    def __init__(self, task: Task, model: nn.Module, statistics: dict[str, object], protocol: str,
                 precision: PrecisionChoice | None = None) -> None:
        super().__init__()
        self.task, self.statistics, self.protocol = task, statistics, protocol
        self.precision_choice = precision or PrecisionChoice(task.config.precision, "set in the config")
        self.model = model
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.val_metrics = nn.ModuleDict({name: MeanMetric(nan_strategy="disable") for name in task.metrics})
        self.compiled_loss = CompiledLoss(task.loss) if task.config.compile_step else None
        self._loss_sum: Tensor | None = None  # Σ loss · graphs over this epoch's steps, on the device
        self._loss_count = 0
        self._ema_tensors: tuple[list[Tensor], ...] | None = None
        self._network_compile: tuple[float | None, float | None] | None = None  # (first step's start, its seconds)
        self.start_summary: str | None = None  # where the weights came from, if not fresh (init_from)

    def compile_network(self) -> None:
        """``compile_step`` for batches whose structure changes (molecules of different sizes): the zoo model's
        network is compiled with ``torch.compile`` and dynamic shapes, one graph for all sizes (Inductor; the
        loss must not differentiate inside, as forces would). The EMA copy, which validates and samples, stays
        eager. The first step compiles (about 100 s for the qm9-edm ``quick`` network on one CPU thread)."""
        network = self.model.network
        network.forward = torch.compile(network.forward, dynamic=True, backend=DYNAMIC_COMPILE_BACKEND)
        self.compiled_loss = None
        self._network_compile = (None, None)

    @property
    def compile_seconds(self) -> float | None:
        """Seconds spent compiling the training step so far (``None`` without ``compile_step``, or before the
        first step of a compiled network)."""
        if self.compiled_loss is not None:
            return self.compiled_loss.compile_seconds
        return self._network_compile[1] if self._network_compile is not None else None

    def on_train_start(self) -> None:
        if not self.model.calibrated:
            batch = self.trainer.datamodule.calibration_batch().to(self.device)
            self.model.calibrate(batch)
            self.ema.load_state_dict(self.model.state_dict())

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if self._network_compile == (None, None):
            self._network_compile = (time.perf_counter(), None)  # the first step compiles; timed to its end
        if self.compiled_loss is not None:
            loss = self.compiled_loss(self.model, self.task.static_batch(self.model, batch))
        else:
            loss = self.task.loss(self.model, batch)
        # Summed here and logged once, with the epoch's last batch (Lightning's logging costs ~1 ms a call).
        weighted = loss.detach() * batch.num_graphs
        self._loss_sum = weighted if self._loss_sum is None else self._loss_sum + weighted
        self._loss_count += batch.num_graphs
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_epoch_loss()
        return loss

    def on_train_epoch_end(self) -> None:
        self._log_epoch_loss()  # an epoch cut short (max_time)

    def _log_epoch_loss(self) -> None:
        if self._loss_sum is not None:
            # One value per epoch: batch_size=1 keeps Lightning from guessing a weight from the batch.
            self.log("train/loss", self._loss_sum / self._loss_count, batch_size=1, on_step=False, on_epoch=True,
                     sync_dist=True)
            self.log("lr", float(self.optimizers().param_groups[0]["lr"]), batch_size=1, on_step=False, on_epoch=True)
            self._loss_sum, self._loss_count = None, 0

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Clipped here, not by the Trainer: Lightning refuses its clipping for fused optimizers under
        # mixed precision (it assumes a gradient scaler; bf16 has none).
        if self.task.config.gradient_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.task.config.gradient_clip, foreach=True)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self._network_compile is not None and self._network_compile[1] is None:
            self._network_compile = (None, time.perf_counter() - self._network_compile[0])
        # Within the step, before any callback's on_train_batch_end: a checkpoint written there (a pause)
        # holds the EMA of this step.
        self._update_ema()

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self._ema_tensors is None:  # the same tensor objects all run long (optimisers update in place)
            self._ema_tensors = tuple(list(tensors) for tensors in (
                self.ema.parameters(), self.model.parameters(), self.ema.buffers(), self.model.buffers()))
        averages, parameters, average_buffers, buffers = self._ema_tensors
        weight = 1.0 - self.task.config.ema_decay
        if all(a.dtype == p.dtype for a, p in zip(averages, parameters)):
            torch._foreach_lerp_(averages, parameters, weight)  # one call for all tensors
        else:
            for average, parameter in zip(averages, parameters):
                average.lerp_(parameter.to(average.dtype), weight)
        for average, buffer in zip(average_buffers, buffers):
            average.copy_(buffer)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        errors = self.task.validation_errors(self.ema, batch)
        for name, metric in self.val_metrics.items():
            metric.update(errors[name].detach())
            self.log(f"val/{name}", metric, batch_size=batch.num_graphs, on_epoch=True)

    def configure_optimizers(self) -> dict[str, object]:
        config = self.task.config
        optimizer = build_optimizer(self.model, config)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs)
        warmup_steps = config.warmup_epochs * steps_per_epoch
        progress = self._time_progress(total_steps) if config.lr_horizon == "time" else None
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup_steps, total_steps, progress and progress(step))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _time_progress(self, total_steps: int):
        """``step -> max(step / total_steps, elapsed training time / max_time)`` (the Lightning timer's time,
        which a resumed run continues)."""
        timer = next(callback for callback in self.trainer.callbacks if isinstance(callback, Timer))
        budget = 60.0 * self.task.config.max_time_minutes
        return lambda step: max(step / total_steps, timer.time_elapsed("train") / budget)

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        checkpoint["ponita_task"] = self.task.name
        checkpoint["ponita_train_config"] = self.task.config.as_dict()
        checkpoint["ponita_model_class"] = type(self.model).__name__
        checkpoint["ponita_model_config"] = dataclasses.asdict(self.model.config)
        checkpoint["ponita_statistics"] = self.statistics
        checkpoint["ponita_protocol"] = self.protocol
