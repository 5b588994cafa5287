r"""Training a :class:`ponita.models.PonitaPotential` on energies and forces with PyTorch Lightning.

Follows the rMD17 training of Bekkers et al. (ICLR 2024): loss on energies and forces scaled by the RMS
of the training forces, Adam with a linearly warmed-up cosine schedule, gradient clipping and an EMA of the
weights for evaluation.
"""

import copy
import dataclasses
import math

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch_geometric.data import Batch
from torchmetrics import MeanAbsoluteError

from ponita.models import PonitaPotential

from ._config import TrainConfig


def energy_force_loss(
    energy: Tensor, forces: Tensor, batch: Batch, scale: Tensor, lambda_forces: float
) -> Tensor:
    r"""The rMD17 loss of PONITA on energies and forces in units of the force RMS :math:`s`.

    .. math::
        L = \frac{1}{\lambda_F} \frac{1}{G} \sum_g \Big(\frac{\hat E_g - E_g}{s}\Big)^2
          + \frac{1}{N} \sum_i \frac{1}{3} \sum_{\alpha} \Big(\frac{\hat F_{i\alpha} - F_{i\alpha}}{s}\Big)^2

    Args:
        energy: predicted energies ``[G]`` (meV).
        forces: predicted forces ``[N, 3]`` (meV/Å).
        batch: targets ``batch.energy`` ``[G]`` and ``batch.forces`` ``[N, 3]``.
        scale: :math:`s` (meV/Å), a scalar tensor.
        lambda_forces: :math:`\lambda_F` (500 in the paper).

    Returns:
        The scalar loss.
    """
    energy_error = (energy - batch.energy.to(energy.dtype)) / scale  # [G]
    force_error = (forces - batch.forces.to(forces.dtype)) / scale  # [N, 3]
    return energy_error.square().mean() / lambda_forces + force_error.square().mean()


def cosine_with_warmup(step: int, warmup_steps: float, total_steps: int) -> float:
    r"""Learning-rate factor :math:`\tfrac12(1 + \cos(\pi t / T)) \min(1, t / t_w)` at step :math:`t`.

    Example:
        >>> cosine_with_warmup(5, 10, 100), cosine_with_warmup(50, 10, 100)
        (0.49692208514878444, 0.5)
    """
    warmup = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)) * warmup


class PotentialTask(pl.LightningModule):
    """Lightning module that trains a potential and keeps an exponential moving average of its weights.

    Training uses ``self.model``; validation, the checkpointed ``ema`` weights and the exported potential
    use ``self.ema``, updated after every optimiser step as
    ``ema ← decay · ema + (1 − decay) · model`` (buffers are copied). Before the first step
    the model is calibrated once on the first training batch (:meth:`on_train_start`); a resumed run is
    already calibrated and skips this.

    The learning rate follows :func:`cosine_with_warmup`, updated every optimiser step, with
    ``warmup_epochs`` and the horizon ``max_epochs`` converted to steps (a fractional epoch is allowed).

    Args:
        model: the potential to train.
        config: the training config (loss weight, optimiser, schedule, EMA decay).
    """

    def __init__(self, model: PonitaPotential, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.config = config
        self.val_energy_mae = MeanAbsoluteError()
        self.val_forces_mae = MeanAbsoluteError()

    def on_train_start(self) -> None:
        if not bool(self.model.network.calibrated):
            batch = self.trainer.datamodule.calibration_batch().to(self.device)
            self.model.calibrate(batch)
            self.ema.load_state_dict(self.model.state_dict())

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        energy, forces = self.model(batch)  # [G], [N, 3]
        loss = energy_force_loss(energy, forces, batch, self.model.scale, self.config.lambda_forces)
        self.log("train/loss", loss, batch_size=batch.num_graphs, on_step=False, on_epoch=True, sync_dist=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=batch.num_graphs, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs: object, batch: Batch, batch_idx: int) -> None:
        self._update_ema()

    @torch.no_grad()
    def _update_ema(self) -> None:
        weight = 1.0 - self.config.ema_decay
        for average, parameter in zip(self.ema.parameters(), self.model.parameters()):
            average.lerp_(parameter.to(average.dtype), weight)
        for average, buffer in zip(self.ema.buffers(), self.model.buffers()):
            average.copy_(buffer)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        energy, forces = self.ema(batch)  # [G], [N, 3]
        self.val_energy_mae.update(energy.detach(), batch.energy.to(energy.dtype))
        self.val_forces_mae.update(forces.detach(), batch.forces.to(forces.dtype))
        self.log("val/energy_mae", self.val_energy_mae, batch_size=batch.num_graphs, on_epoch=True)
        self.log("val/forces_mae", self.val_forces_mae, batch_size=batch.num_graphs, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> dict[str, object]:
        config = self.config
        decay = [p for p in self.model.parameters() if p.dim() >= 2]  # weight matrices
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]  # biases, scales
        optimizer = torch.optim.Adam(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
        )
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs)
        warmup_steps = config.warmup_epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup_steps, total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        checkpoint["ponita_potential_config"] = self.model.config()
        checkpoint["ponita_train_config"] = dataclasses.asdict(self.config)
