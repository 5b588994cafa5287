"""Probes of a model's quality during training, logged against the time spent in training steps.

Validation losses rank recipes badly when what users care about is another measure (a generator's molecule
stability, say). A task that can measure that during training implements :meth:`Task.probe`; with
``probe_every_minutes`` set, :class:`ProbeCallback` calls it on the EMA model whenever that many more
minutes of training steps have passed, and appends a row to ``<output>/logs/probe.csv``: training hours
(time inside training steps only: no validation, no probes, no data loading between steps), epoch, step,
the probe's seconds and its measures. The training hours continue across resumed runs, so recipes compare
at equal CPU-hours whatever else a machine did meanwhile.
"""

import csv
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

PROBE_FILE = "probe.csv"
PAUSE_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that pause a run (:class:`PauseCallback`): Ctrl-C, and what ``kill`` and job schedulers send."""


class ProbeCallback(pl.Callback):
    """Calls ``module.task.probe(module.ema)`` every ``every_minutes`` of training-step time (rank 0 only).

    Args:
        every_minutes: minutes of training steps between probes (the first comes after one interval).
        path: the CSV file rows are appended to.
    """

    def __init__(self, every_minutes: float, path: str | Path) -> None:
        if not every_minutes > 0:
            raise ValueError(f"every_minutes must be > 0, got {every_minutes}.")
        self.interval = 60.0 * every_minutes
        self.path = Path(path)
        self.train_seconds = 0.0
        self.next_probe = self.interval
        self._step_start: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        if self._step_start is not None:
            self.train_seconds += time.perf_counter() - self._step_start
            self._step_start = None
        if self.train_seconds < self.next_probe:
            return
        while self.next_probe <= self.train_seconds:
            self.next_probe += self.interval
        if trainer.is_global_zero:
            self.probe(trainer, module)

    def probe(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, Any]:
        """Probes the EMA model now and appends the row; returns it."""
        start = time.perf_counter()
        model = module.ema
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                measures = module.task.probe(model)
        finally:
            model.train(was_training)
        row = {"train_hours": self.train_seconds / 3600.0, "epoch": trainer.current_epoch,
               "step": trainer.global_step, "probe_seconds": time.perf_counter() - start, **measures}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.is_file()
        with open(self.path, "a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        return row

    def state_dict(self) -> dict[str, float]:
        return {"train_seconds": self.train_seconds, "next_probe": self.next_probe}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.train_seconds = state_dict["train_seconds"]
        self.next_probe = state_dict["next_probe"]


def read_probes(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``probe.csv`` as numbers (empty if the file does not exist)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as file:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)} for row in csv.DictReader(file)]


class PauseCallback(pl.Callback):
    """Stops training after ``minutes`` of wall time in this process, or when asked to (checked after every step).

    At the step that uses up the budget, or the first step after a Ctrl-C (SIGINT) or a SIGTERM (what ``kill``
    and job schedulers send), it writes the run's full state to ``path`` (mid-epoch, with the data loader's
    place in the epoch) and stops; :func:`~ponita.train.fit` then makes that file the run's ``last.ckpt``.
    Resumed from it, the run continues with the next batch: the Lightning timer, the time-based schedule and
    the probe clock count on, so a run trained in several sittings is the run trained in one. A signal that
    arrives in validation or a probe pauses after the next training step; the same signal a second time
    does what it did without this callback (a second Ctrl-C aborts at once).

    Args:
        minutes: wall-time budget of this process's training, > 0; ``None``: no budget, only the signals.
        path: where to write the checkpoint of the pause.
    """

    def __init__(self, minutes: float | None, path: str | Path) -> None:
        if minutes is not None and not minutes > 0:
            raise ValueError(f"pause_after_minutes must be > 0, got {minutes}.")
        self.budget = 60.0 * minutes if minutes is not None else math.inf
        self.path = Path(path)
        self.start = time.monotonic()
        self.paused = False
        self.interrupted = False  # a Ctrl-C or SIGTERM asked for a pause
        self._previous_handlers: dict[int, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # only there can Python take signals
            # Installed after Lightning's own SIGTERM handler, which would end the run in validation unsaved.
            for signum in PAUSE_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        signal.signal(signum, self._previous_handlers.pop(signum))  # the same signal again: what it did before
        self.interrupted = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: pausing at the end of a training step (writes last.ckpt; {name} again to abort).",
              flush=True)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            if signal.getsignal(signum) == self._interrupt:
                signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        if self.paused or trainer.should_stop:
            return
        asked = self.interrupted or time.monotonic() - self.start >= self.budget
        if trainer.strategy.reduce_boolean_decision(asked, all=False):  # every rank stops at the same step
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True
            self.paused = True
