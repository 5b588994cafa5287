"""Training runs: rMD17 data → statistics → potential → Lightning fit → exported potential, test scores, plot."""

import dataclasses
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger
from torch_geometric.data import Data

from ponita.datasets import fit_atomic_reference_energies, force_rms, load_rmd17, train_val_split
from ponita.models import PonitaPotential, load_potential, read_checkpoint_metadata, save_potential

from ._config import TrainConfig, load_config, save_config
from ._data_module import PotentialDataModule
from ._evaluate import evaluate_potential
from ._learning_curve import plot_learning_curve
from ._lightning_module import PotentialTask

MONITOR = "val/forces_mae"


@dataclass
class RunResult:
    """What a training run produced (paths are ``None`` on non-zero ranks of a distributed run).

    Attributes:
        output: the run folder.
        potential: the exported EMA potential of the best epoch (``potential.pt``).
        best_checkpoint: Lightning checkpoint of the best validation force MAE.
        last_checkpoint: Lightning checkpoint of the last epoch (for ``--resume``).
        metrics_csv: the CSV log.
        learning_curve: the learning-curve PNG.
        test_metrics: test MAEs (``None`` without test frames).
        test_json: where ``test_metrics`` were written.
    """

    output: Path
    potential: Path | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics_csv: Path | None
    learning_curve: Path | None
    test_metrics: dict[str, object] | None
    test_json: Path | None


def md17_protocol(molecule: str, split: int, num_val: int = 50) -> str:
    """A one-line description of the rMD17 protocol, stored with every test result."""
    return (
        f"rMD17 {molecule}, split {split:02d}: train on {1000 - num_val} frames of train_{split:02d} "
        f"(seeded train_val_split), validate on the other {num_val}, test on the 1000 frames of test_{split:02d}"
    )


def train_md17(
    config: TrainConfig, resume: str | Path | None = None, callbacks: Sequence[pl.Callback] = ()
) -> RunResult:
    """Trains a potential on rMD17 by the protocol of :func:`md17_protocol` and tests it.

    Args:
        config: the run's config (molecule, split, data_dir, model, optimisation, hardware).
        resume: a Lightning checkpoint (e.g. ``<output>/checkpoints/last.ckpt``) to continue from.
        callbacks: extra Lightning callbacks, e.g. to report progress.

    Returns:
        The paths and test metrics of the run.
    """
    frames = load_rmd17(config.molecule, "train", split=config.split, data_dir=config.data_dir)
    train_frames, val_frames = train_val_split(frames, num_val=config.num_val)
    test_frames = load_rmd17(config.molecule, "test", split=config.split, data_dir=config.data_dir)
    protocol = md17_protocol(config.molecule, config.split, config.num_val)
    return train_potential(config, train_frames, val_frames, test_frames, protocol, resume, callbacks)


def train_potential(
    config: TrainConfig,
    train_frames: Sequence[Data],
    val_frames: Sequence[Data],
    test_frames: Sequence[Data] | None = None,
    protocol: str = "",
    resume: str | Path | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> RunResult:
    """Trains a :class:`PonitaPotential` on the given frames with Lightning, then exports and tests it.

    Statistics (per-element reference energies, force RMS) come from ``train_frames``. The run folder
    ``config.output`` receives ``config.yaml``, ``checkpoints/{best,last}.ckpt`` (Lightning state with
    the EMA weights), ``logs/metrics.csv``, ``potential.pt`` (the EMA potential of the best epoch),
    ``test.json`` and ``learning_curve.png``. Only rank 0 writes the last four.

    Args:
        config: the training config.
        train_frames: training frames.
        val_frames: validation frames (model selection, early stopping).
        test_frames: test frames, evaluated once after training.
        protocol: description of the data split, stored in ``test.json``.
        resume: a Lightning checkpoint of this run to continue from (same epoch, step, optimiser,
            scheduler, EMA and data order).
        callbacks: extra Lightning callbacks, e.g. to report progress.

    Returns:
        The paths and test metrics of the run.

    Raises:
        ValueError: if ``config.output`` already holds checkpoints and ``resume`` is not given.
    """
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    output = Path(config.output)
    if resume is None and any((output / "checkpoints").glob("*.ckpt")):
        raise ValueError(
            f"{output} already holds the checkpoints of a run. Continue it with "
            f"--resume {output / 'checkpoints' / 'last.ckpt'}, or choose another output folder."
        )
    output.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.seed, verbose=False)

    reference_energies = fit_atomic_reference_energies(train_frames)
    model = PonitaPotential(
        sorted(reference_energies), reference_energies, force_rms(train_frames), **config.model_options()
    )
    task = PotentialTask(model, config)
    data = PotentialDataModule(train_frames, val_frames, config.batch_size, config.seed, config.num_workers)
    checkpoint = ModelCheckpoint(
        dirpath=output / "checkpoints", filename="best", monitor=MONITOR, mode="min", enable_version_counter=False
    )
    # A second, unmonitored callback writes last.ckpt after every epoch (save_last only follows new bests).
    last_checkpoint = ModelCheckpoint(dirpath=output / "checkpoints", filename="last", enable_version_counter=False)
    all_callbacks: list[pl.Callback] = [checkpoint, last_checkpoint, *callbacks]
    if config.early_stopping_patience is not None:
        all_callbacks.append(EarlyStopping(MONITOR, patience=config.early_stopping_patience, mode="min"))
    loggers = _loggers(output, keep_previous=resume is not None)
    trainer = pl.Trainer(
        default_root_dir=output,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_time_minutes} if config.max_time_minutes is not None else None,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        gradient_clip_val=config.gradient_clip,
        check_val_every_n_epoch=config.check_val_every_n_epoch,
        callbacks=all_callbacks,
        logger=loggers,
        inference_mode=False,  # forces are gradients, also in validation
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # EpochSampler shards the data itself
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    if trainer.is_global_zero:
        save_config(config, output / "config.yaml")
    trainer.fit(task, datamodule=data, ckpt_path=str(resume) if resume is not None else None)

    if not trainer.is_global_zero:
        return RunResult(output, None, None, None, None, None, None, None)
    last = Path(last_checkpoint.best_model_path)
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    potential = export_potential(best, output / "potential.pt", protocol=protocol, train_config=config)
    metrics_csv = Path(loggers[0].log_dir) / "metrics.csv"
    curve = plot_learning_curve(metrics_csv.parent, output / "learning_curve.png") if metrics_csv.is_file() else None
    test_metrics, test_json = None, None
    if test_frames is not None:
        model = load_potential(potential, map_location=task.device)
        test_metrics = {
            **evaluate_potential(model, test_frames, config.test_batch_size, config.test_rotations, config.seed),
            "protocol": protocol,
            "checkpoint": str(potential),
        }
        test_json = output / "test.json"
        test_json.write_text(json.dumps(test_metrics, indent=2))
    return RunResult(output, potential, best, last, metrics_csv, curve, test_metrics, test_json)


def export_potential(
    lightning_checkpoint: str | Path,
    path: str | Path,
    protocol: str = "",
    train_config: TrainConfig | None = None,
) -> Path:
    """Writes the EMA potential stored in a Lightning checkpoint of :class:`PotentialTask` to ``path``.

    Args:
        lightning_checkpoint: a ``.ckpt`` written during training.
        path: the potential file to write (see :func:`ponita.models.save_potential`).
        protocol: data-split description stored in the metadata.
        train_config: the training config stored in the metadata.

    Returns:
        ``path``.
    """
    state = torch.load(lightning_checkpoint, map_location="cpu", weights_only=False)
    model = PonitaPotential(**state["ponita_potential_config"])
    ema = {key.removeprefix("ema."): value for key, value in state["state_dict"].items() if key.startswith("ema.")}
    if ema["network.embedding.weight"].dtype == torch.float64:
        model.double()
    model.load_state_dict(ema)
    metadata: dict[str, object] = {"protocol": protocol, "epoch": state["epoch"], "global_step": state["global_step"]}
    if train_config is not None:
        metadata["train_config"] = dataclasses.asdict(train_config)
    return save_potential(model, path, **metadata)


def resume_config(lightning_checkpoint: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config stored in a Lightning checkpoint of a run, with ``key=value`` overrides applied."""
    state = torch.load(lightning_checkpoint, map_location="cpu", weights_only=False)
    return load_config(preset=None, overrides=overrides, base=state["ponita_train_config"])


def test_potential(
    potential: str | Path,
    split: int | None = None,
    data_dir: str | Path | None = None,
    molecule: str | None = None,
    rotations: int = 0,
    batch_size: int = 50,
) -> dict[str, object]:
    """Tests a saved potential on the 1000 frames of an rMD17 test split.

    ``molecule``, ``split`` and ``data_dir`` default to those the potential was trained with (stored in
    its metadata by ``ponita train``).

    Args:
        potential: a ``potential.pt``.
        split: rMD17 split.
        data_dir: folder with the rMD17 files (``None``: as in training, else the bundled data).
        molecule: rMD17 molecule.
        rotations: also average over this many random rotations (reported separately).
        batch_size: molecules per forward pass.

    Returns:
        :func:`evaluate_potential`'s metrics plus ``protocol`` and ``checkpoint``.
    """
    trained = read_checkpoint_metadata(potential).get("train_config") or {}
    molecule = molecule or trained.get("molecule")
    if molecule is None:
        raise ValueError(f"{potential} does not record its molecule; pass molecule=... (--molecule).")
    split = split if split is not None else int(trained.get("split", 1))
    data_dir = data_dir if data_dir is not None else trained.get("data_dir")
    num_val = int(trained.get("num_val", 50))
    frames = load_rmd17(molecule, "test", split=split, data_dir=data_dir)
    model = load_potential(potential)
    metrics = evaluate_potential(model, frames, batch_size=batch_size, rotations=rotations)
    return {**metrics, "protocol": md17_protocol(molecule, split, num_val), "checkpoint": str(potential)}


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
