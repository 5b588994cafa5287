"""The shared training stack: task data → statistics → model → Lightning fit → exported EMA model, test scores, plot."""

import importlib.util
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger
from torch_geometric.data import Batch, Data

from ponita.models import Checkpoint, NetworkModel, load_model, model_classes, read_checkpoint, save_model, stored_config
from ponita.ops import flush_denormals

from ._config import TrainConfig, load_config, save_config
from ._data_module import TaskDataModule
from ._learning_curve import plot_learning_curve
from ._lightning_module import TaskModule
from ._machine import choose_precision
from ._probe import PROBE_FILE, PauseCallback, ProbeCallback
from ._task import Task, task_class


@dataclass
class RunResult:
    """What a training run produced (paths are ``None`` on non-zero ranks of a distributed run).

    Attributes:
        output: the run folder.
        model: the exported EMA model of the best epoch (e.g. ``potential.pt``).
        best_checkpoint: Lightning checkpoint of the best validation score.
        last_checkpoint: Lightning checkpoint of the last epoch (for ``--resume``).
        metrics_csv: the CSV log.
        learning_curve: the learning-curve PNG.
        test_metrics: test metrics (``None`` without test data).
        test_json: where ``test_metrics`` were written.
    """

    output: Path
    model: Path | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics_csv: Path | None
    learning_curve: Path | None
    test_metrics: dict[str, Any] | None
    test_json: Path | None
    paused: bool = False


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    callbacks: Sequence[pl.Callback] = (),
    pause_after_minutes: float | None = None,
) -> RunResult:
    """Trains and tests ``config.task`` on the task's own data (what ``ponita train <task>`` runs).

    Args:
        config: the run's config.
        resume: a Lightning checkpoint of this run (e.g. ``<output>/checkpoints/last.ckpt``) to continue.
        callbacks: extra Lightning callbacks, e.g. to report progress.
        pause_after_minutes: see :func:`fit`.

    Returns:
        The paths and test metrics of the run.
    """
    if config.init_from is not None and resume is None and not Path(config.init_from).is_file():  # before the data loads
        raise FileNotFoundError(f"init_from={config.init_from} does not exist; pass a model file or a run's .ckpt.")
    task = task_class(config.task)(config)
    train_data, val_data = task.train_val_data()
    return fit(task, train_data, val_data, task.test_data(), resume=resume, callbacks=callbacks,
               pause_after_minutes=pause_after_minutes)


def fit(
    task: Task,
    train_data: Sequence[Data],
    val_data: Sequence[Data],
    test_data: Sequence[Data] | None = None,
    resume: str | Path | None = None,
    callbacks: Sequence[pl.Callback] = (),
    protocol: str | None = None,
    test_protocol: str | None = None,
    pause_after_minutes: float | None = None,
) -> RunResult:
    """Trains ``task``'s model on the given samples with Lightning, then exports and tests it.

    Statistics come from ``train_data`` (:meth:`Task.statistics`). The run folder ``config.output``
    receives ``config.yaml``, ``checkpoints/{best,last}.ckpt`` (Lightning state with the EMA weights),
    ``logs/metrics.csv``, the exported EMA model of the best epoch (``task.model_file``), ``test.json``
    and ``learning_curve.png``. Only rank 0 writes the last four.

    Args:
        task: the task, holding the run's config.
        train_data: training samples.
        val_data: validation samples (model selection, early stopping).
        test_data: test samples, evaluated once after training.
        resume: a Lightning checkpoint of this run to continue from (same epoch, step, optimiser,
            scheduler, EMA and data order).
        callbacks: extra Lightning callbacks, e.g. to report progress.
        protocol: what the model is trained on (default: :meth:`Task.protocol`); stored in the model file.
        test_protocol: what ``test_data`` is (default: :meth:`Task.test_protocol`).
        pause_after_minutes: stop this call after that many minutes of wall time (checked after each
            step), write ``last.ckpt`` and return without exporting or testing (``paused=True``), to be
            continued with ``resume``. Unlike ``max_time_minutes`` it leaves the run's schedule alone:
            for runs longer than one sitting. A Ctrl-C (SIGINT) or SIGTERM pauses the same way, budget or
            not, at the end of the training step it arrives in (from validation: of the next one).

    Returns:
        The paths and test metrics of the run.

    Raises:
        ValueError: if ``config.output`` already holds checkpoints and ``resume`` is not given.
    """
    config = task.config
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    output = Path(config.output)
    if resume is None and any((output / "checkpoints").glob("*.ckpt")):
        raise ValueError(
            f"{output} already holds the checkpoints of a run. Continue it with "
            f"--resume {output / 'checkpoints' / 'last.ckpt'}, or choose another output folder."
        )
    precision = choose_precision(config.precision, config.accelerator)
    pl.seed_everything(config.seed, verbose=False)
    protocol = protocol if protocol is not None else task.protocol()
    protocol = f"{protocol}; trained in {precision.precision}" + (
        f" ({precision.reason})" if config.precision == "auto" else "")

    statistics = task.statistics(train_data)
    model = task.build_model(statistics)
    start = (grow_model(model, config.init_from, regrid=config.init_regrid)
             if config.init_from is not None and resume is None else None)
    output.mkdir(parents=True, exist_ok=True)  # once the model is built: a bad init_from leaves no run folder
    module = TaskModule(task, model, statistics, protocol, precision)
    module.start_summary = start
    if config.compile_step and task.static_batch(module.model, Batch.from_data_list(list(train_data[:1]))) is None:
        if task.second_order_loss or not isinstance(getattr(module.model, "network", None), torch.nn.Module):
            raise ValueError(
                f"compile_step needs batches whose graph does not depend on the positions, which task {task.name!r} "
                "cannot give for this model; set compile_step=false."
            )
        module.compile_network()  # batches of varying sizes: the network, with dynamic shapes
    data = TaskDataModule(train_data, val_data, config.batch_size, config.seed, config.num_workers, task.rotate_fields)
    monitor = f"val/{task.monitor}"
    checkpoint = ModelCheckpoint(
        dirpath=output / "checkpoints", filename="best", monitor=monitor, mode="min", enable_version_counter=False
    )
    # A second, unmonitored callback writes last.ckpt after every epoch (save_last only follows new bests).
    last_checkpoint = ModelCheckpoint(dirpath=output / "checkpoints", filename="last", enable_version_counter=False)
    paused_checkpoint = output / "checkpoints" / "paused.ckpt"
    pause = PauseCallback(pause_after_minutes, paused_checkpoint)  # also on Ctrl-C and SIGTERM
    all_callbacks: list[pl.Callback] = [checkpoint, last_checkpoint, *callbacks, pause]
    if config.probe_every_minutes is not None and type(task).probe is not Task.probe:
        all_callbacks.append(ProbeCallback(config.probe_every_minutes, output / "logs" / PROBE_FILE))
    if config.early_stopping_patience is not None:
        all_callbacks.append(EarlyStopping(monitor, patience=config.early_stopping_patience, mode="min"))
    loggers = _loggers(output, keep_previous=resume is not None)
    trainer = pl.Trainer(
        default_root_dir=output,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_time_minutes} if config.max_time_minutes is not None else None,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=precision.precision,
        check_val_every_n_epoch=config.check_val_every_n_epoch,
        callbacks=all_callbacks,
        logger=loggers,
        inference_mode=False,  # a task may need gradients in validation (forces)
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # EpochSampler shards the data itself
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    if trainer.is_global_zero:
        save_config(config, output / "config.yaml")
    # Denormal floats (the GELUs of the kernel basis make them) are flushed to zero in this thread: a
    # compiled md17 step runs 2× faster on one core, and results change only below 1e-38.
    with warnings.catch_warnings(), flush_denormals():
        # Lightning checks the loader for resumability; TaskDataModule's state does it (tested exact).
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume is not None else None)

    if not trainer.is_global_zero:
        return RunResult(output, None, None, None, None, None, None, None)
    last = Path(last_checkpoint.best_model_path)
    if pause.paused:  # the state of the step that paused, not of the cut-short epoch's end
        last = paused_checkpoint.replace(output / "checkpoints" / "last.ckpt")
        return RunResult(output, None, None, last, None, None, None, None, paused=True)
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    model_path = export_model(best, output / task.model_file)
    exported = read_checkpoint(model_path)
    model = exported.build(module.device)
    finalized = task.finalize(model, train_data)
    if finalized is not None:
        save_model(model, model_path, task=exported.task, **exported.metadata, finalized=finalized)
    metrics_csv = Path(loggers[0].log_dir) / "metrics.csv"
    curve = (
        plot_learning_curve(metrics_csv.parent, output / "learning_curve.png", task.metrics)
        if metrics_csv.is_file()
        else None
    )
    test_metrics, test_json = None, None
    if test_data is not None:
        tested_on = test_protocol if test_protocol is not None else task.test_protocol()
        with flush_denormals():
            test_metrics = _test_record(task, model, test_data, protocol, tested_on, model_path, output)
        test_json = output / "test.json"
        test_json.write_text(json.dumps(test_metrics, indent=2))
    return RunResult(output, model_path, best, last, metrics_csv, curve, test_metrics, test_json)


def export_model(lightning_checkpoint: str | Path, path: str | Path) -> Path:
    """Writes the EMA model stored in a Lightning checkpoint of a run to ``path`` (see :func:`ponita.models.save_model`).

    The model file records the task, the training config, the training protocol, the statistics, the
    epoch and the step, so any command that takes it knows what it is.

    Args:
        lightning_checkpoint: a ``.ckpt`` written during training.
        path: the model file to write.

    Returns:
        ``path``.

    Raises:
        FileNotFoundError, ValueError: if the file is missing, unreadable or not a checkpoint of a ponita run.
    """
    state = _read_lightning_checkpoint(lightning_checkpoint)
    metadata = {
        "train_config": state["ponita_train_config"],
        "protocol": state["ponita_protocol"],
        "statistics": state["ponita_statistics"],
        "epoch": state["epoch"],
        "global_step": state["global_step"],
    }
    return save_model(_ema_model(state), path, task=state["ponita_task"], **metadata)


def _ema_model(state: dict[str, Any]) -> torch.nn.Module:
    """The EMA model of a Lightning checkpoint's contents."""
    cls = model_classes()[state["ponita_model_class"]]
    model = cls.from_config(cls.config_class(**stored_config(cls.config_class, state["ponita_model_config"])))
    ema = {key.removeprefix("ema."): value for key, value in state["state_dict"].items() if key.startswith("ema.")}
    if ema[next(name for name, _ in model.named_parameters())].dtype == torch.float64:
        model.double()  # 64-true training; buffers that are float64 anyway (grid, E0) keep their dtype otherwise
    model.load_state_dict(ema)
    return model


def _read_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a Lightning checkpoint of a ponita run, checked.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is unreadable or not a checkpoint of a ponita run.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist (or is a folder).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # zip, pickle and EOF errors all mean: not a readable checkpoint
        raise ValueError(f"{path} is not a readable Lightning checkpoint (truncated?).") from None
    if not isinstance(state, dict) or "ponita_train_config" not in state:
        raise ValueError(f"{path} is not a Lightning checkpoint of a ponita run; pass RUN/checkpoints/last.ckpt.")
    return state


def resume_config(lightning_checkpoint: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config stored in a Lightning checkpoint of a run, with ``key=value`` overrides applied.

    Raises:
        ValueError: if the file is not a readable Lightning checkpoint of a ponita run.
    """
    state = _read_lightning_checkpoint(lightning_checkpoint)
    stored = state["ponita_train_config"]
    task = state.get("ponita_task") or stored.get("task")
    if task is None and "molecule" in stored:  # a flat config of ponita 0.1.0, which trained md17 potentials only
        task = "md17"
    if task is None:
        raise ValueError(f"{lightning_checkpoint} does not say which task it trained; it is not a checkpoint of a ponita run.")
    return load_config(task, overrides=overrides, base=stored)


def test_checkpoint(
    path: str | Path | Checkpoint,
    overrides: Sequence[str] = (),
    batch_size: int | None = None,
    artefacts: str | Path | None = None,
) -> dict[str, Any]:
    """Tests a model file written by ``ponita train`` on its task's test data (what ``ponita test`` runs).

    The task, its options and the training protocol come from the file; ``overrides`` (``key=value``,
    e.g. ``task_options.split=2``) change what it is tested on.

    Args:
        path: a model file (e.g. ``potential.pt``), or its :class:`~ponita.models.Checkpoint` already read.
        overrides: config overrides applied to the stored training config (checked before any data is read).
        batch_size: samples per forward pass (default: the config's ``test_batch_size``).
        artefacts: a folder for the task's output files (e.g. plots); ``None``: none are written.

    Returns:
        The task's test metrics plus ``trained_on``, ``tested_on``, ``checkpoint`` and, with
        ``artefacts``, the files written.

    Raises:
        ValueError: if the file is unreadable, records no task, or the overrides are invalid.
    """
    checkpoint = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    task = task_from_checkpoint(checkpoint, overrides)
    if batch_size is not None:
        task.config.test_batch_size = batch_size
    model = checkpoint.build()  # a damaged file fails here, before the data is read
    data = task.test_data()
    if data is None:
        raise ValueError(f"Task {task.name!r} has no test data.")
    trained_on = checkpoint.metadata.get("protocol") or "unknown (the file records no training protocol)"
    folder = Path(artefacts) if artefacts is not None else None
    return _test_record(task, model, data, trained_on, task.test_protocol(), checkpoint.path, folder)


def task_from_checkpoint(checkpoint: Checkpoint, overrides: Sequence[str] = ()) -> Task:
    """The task that produced ``checkpoint``, configured as in training with ``overrides`` applied."""
    if checkpoint.task is None:
        raise ValueError(f"{checkpoint.path} records no task; it was not written by `ponita train`.")
    try:
        stored = load_config(checkpoint.task, base=checkpoint.metadata.get("train_config") or {})
    except ValueError as error:
        raise ValueError(f"The training config stored in {checkpoint.path} does not fit this ponita: {error}") from None
    return task_class(checkpoint.task)(load_config(checkpoint.task, overrides=overrides, base=stored.as_dict()))


def _test_record(task: Task, model: torch.nn.Module, data: Sequence[Data], trained_on: str, tested_on: str,
                 model_path: Path, artefacts: Path | None) -> dict[str, Any]:
    """The task's test metrics with what the model was trained and tested on, and its artefacts."""
    record = {**task.test(model.eval(), data), "trained_on": trained_on, "tested_on": tested_on,
              "checkpoint": str(model_path)}
    if artefacts is not None:
        artefacts.mkdir(parents=True, exist_ok=True)
        files = task.write_artefacts(model, data, artefacts)
        if files:
            record["artefacts"] = {name: str(file) for name, file in files.items()}
    return record


def grow_model(model: torch.nn.Module, path: str | Path, regrid: bool = False) -> str:
    """Starts ``model`` from the network weights of the model file ``path``, or of the EMA weights of a run's
    Lightning checkpoint (``.ckpt``) (``init_from``; see :meth:`ponita.models.NetworkModel.grow_from`), and says so
    in words. ``regrid`` (``init_regrid``) lets the network have another direction grid.

    Raises:
        FileNotFoundError, ValueError: if the file is missing or unreadable, or its model does not fit ``model``.
    """
    source = _ema_model(_read_lightning_checkpoint(path)) if str(path).endswith(".ckpt") else load_model(path)
    if not isinstance(model, NetworkModel):
        raise ValueError(f"init_from needs a model built around one PONITA network; {type(model).__name__} is not.")
    try:
        model.grow_from(source, regrid=regrid)
    except ValueError as error:
        raise ValueError(f"init_from={path} does not fit this run's model: {error}") from None
    before, after = source.network.config, model.network.config
    grown = []
    if after.num_layers > before.num_layers:
        grown.append(f"{before.num_layers} layers → {after.num_layers}, the new blocks starting as the identity")
    if after.hidden_dim > before.hidden_dim:
        grown.append(f"{before.hidden_dim} channels → {after.hidden_dim}, each copied")
    if (after.num_ori, after.grid) != (before.num_ori, before.grid):
        grown.append(f"{before.num_ori} {before.grid} directions → {after.num_ori} {after.grid}, the trained kernels "
                     "on the new grid (a changed function)")
    return f"the network weights of {path}" + (f" ({'; '.join(grown)})" if grown else "")


def _loggers(output: Path, keep_previous: bool) -> list[Logger]:
    """A CSV logger in ``<output>/logs``, plus TensorBoard when it is installed.

    Lightning's CSV logger deletes an existing ``metrics.csv``; when a run is resumed the old file is
    kept as ``metrics-<k>.csv`` instead, and the learning curve reads all of them.
    """
    metrics_csv = output / "logs" / "metrics.csv"
    if keep_previous and metrics_csv.is_file():
        metrics_csv.rename(metrics_csv.with_name(f"metrics-{len(list(metrics_csv.parent.glob('metrics*.csv')))}.csv"))
    loggers: list[Logger] = [CSVLogger(output, name="", version="logs")]
    if importlib.util.find_spec("tensorboard") is not None:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(output, name="", version="tensorboard"))
    return loggers
