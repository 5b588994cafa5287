"""Shared pieces of the training tests. The dipole task module is a plug-in that the tests load through
``PONITA_TASKS``, not a test module."""

from collections.abc import Callable

import pytest
import pytorch_lightning as pl

collect_ignore = ["dipole_task.py"]


class _StopAfterEpochs(pl.Callback):
    """Interrupts training after a number of epochs, as a killed job would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


@pytest.fixture
def stop_after_epochs() -> Callable[[int], pl.Callback]:
    """A Lightning callback that interrupts training after the given number of epochs."""
    return _StopAfterEpochs
