"""What the ``ponita`` commands share: the usage error, flag helpers, output checks, printers and structure reading."""

import argparse
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ponita.datasets import RMD17_MOLECULES

from .._task import Task


class UsageError(ValueError):
    """A bad command-line argument; reported as one line."""


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Adds a task's ``--flag``s, each of which sets a config field (read back by :func:`flag_overrides`)."""
    for flag, (key, options) in flags.items():
        metavar = None if "choices" in options else flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag, dest=_dest(flag), metavar=metavar, **options)


def _dest(flag: str) -> str:
    return "flag_" + flag.lstrip("-").replace("-", "_")


def flag_overrides(args: argparse.Namespace, flags: dict[str, tuple[str, dict[str, Any]]]) -> list[str]:
    """``key=value`` overrides for the flags that were given."""
    values = {key: getattr(args, _dest(flag)) for flag, (key, _) in flags.items()}
    return [f"{key}={value}" for key, value in values.items() if value is not None]


def check_output(output: str) -> None:
    """A run folder must be a folder (or not exist yet)."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output {path} is a file, not a folder.")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise UsageError(f"--output {path} lies under a file.")


class EpochPrinter(pl.Callback):
    """Prints the run header (machine, precision, compile time), then one line per epoch with the training loss and
    the latest validation metrics (rank 0 only)."""

    def __init__(self) -> None:
        self.start = time.time()
        self._compile_reported = False

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        from .._machine import machine_summary

        if trainer.is_global_zero:
            config = module.task.config
            print(f"  machine:   {machine_summary(config.num_threads)}")
            print(f"  precision: {module.precision_choice}", flush=True)
            if module.start_summary:
                print(f"  weights:   {module.start_summary}", flush=True)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        seconds = getattr(module, "compile_seconds", None)
        if self._compile_reported or seconds is None or not trainer.is_global_zero:
            return
        self._compile_reported = True
        print(f"  compiled the training step in {seconds:.0f} s (compile_step=false skips this)", flush=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        task: Task = module.task
        metrics = trainer.callback_metrics
        if not trainer.is_global_zero or f"val/{task.monitor}" not in metrics:
            return
        loss = metrics.get("train/loss")
        loss_text = f"loss {float(loss):.4g}  " if loss is not None else ""
        scores = "  ".join(f"{label} {float(metrics[f'val/{name}']):8.4g}" for name, label in task.metrics.items())
        print(f"  epoch {trainer.current_epoch + 1:4d}/{trainer.max_epochs}  {loss_text}{scores}  "
              f"({time.time() - self.start:.0f} s)", flush=True)


def print_test(cls: type[Task], record: dict[str, Any]) -> None:
    """Prints a test record: what the model was trained and tested on, its metrics and the task's output files."""
    print(f"\nTrained on: {record['trained_on']}")
    print(f"Tested on:  {record['tested_on']}")
    print(cls.format_metrics(record))
    for name, path in record.get("artefacts", {}).items():
        print(f"  {name}: {path}")


def print_md_progress(step: int, potential: float, total: float, temperature: float) -> None:
    """The progress callback of a molecular dynamics run."""
    print(f"  step {step:6d}  E_pot {potential:14.4f} eV  E_tot {total:14.4f} eV  T {temperature:7.1f} K", flush=True)


def print_drift(result: Any, ensemble: str) -> None:
    """Prints the total-energy drift of a molecular dynamics run."""
    note = "" if ensemble == "nve" else " (Langevin does not conserve energy)"
    print(f"Energy drift{note}: max |E_tot - E_tot(0)| = {result.max_drift * 1000:.3f} meV "
          f"= {result.max_drift_per_atom * 1000:.3f} meV/atom over {result.steps[-1]} steps")


def print_paths(result: Any) -> None:
    """Prints the files of a training run."""
    print("Outputs:")
    print(f"  model:           {result.model}")
    print(f"  best checkpoint: {result.best_checkpoint}")
    print(f"  last checkpoint: {result.last_checkpoint}  (continue with --resume)")
    print(f"  logs:            {result.metrics_csv}")
    print(f"  learning curve:  {result.learning_curve}")
    print(f"  test results:    {result.test_json}")
    for name, path in ((result.test_metrics or {}).get("artefacts") or {}).items():
        print(f"  {name + ':':16s} {path}")


def add_structure_arguments(parser: argparse.ArgumentParser) -> None:
    """The potential and the structure of ``ponita md`` and ``ponita bench md`` (read by :func:`md_structure`)."""
    parser.add_argument("checkpoint", help="potential.pt written by `ponita train md17`")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--structure", help="any ASE-readable structure file")
    start.add_argument("--from-data", choices=RMD17_MOLECULES, metavar="MOLECULE",
                       help="start from an rMD17 test frame")
    parser.add_argument("--split", type=int, default=1, help="rMD17 split for --from-data")
    parser.add_argument("--frame", type=int, default=0, help="test frame for --from-data")
    parser.add_argument("--data-dir", help="folder with the rMD17 files for --from-data")


def md_structure(args: argparse.Namespace, model: Any) -> Any:
    """The structure of ``--structure`` or ``--from-data``, checked against the potential's elements."""
    import ase

    from ponita.datasets import load_rmd17

    if args.structure:
        atoms = read_structure(args.structure)
    else:
        frames = load_rmd17(args.from_data, "test", split=args.split, data_dir=args.data_dir)
        if not 0 <= args.frame < len(frames):
            raise UsageError(f"--frame must lie in 0..{len(frames) - 1}, got {args.frame}.")
        frame = frames[args.frame]
        atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    known = set(model.config.atomic_numbers)
    unknown = sorted(set(atoms.get_atomic_numbers().tolist()) - known)
    if unknown:
        raise UsageError(f"the structure has element(s) {unknown} that the potential was not trained on "
                         f"({sorted(known)}).")
    atoms.pbc = False
    return atoms


def read_structure(path: str) -> Any:
    """The first structure in an ASE-readable file, or a one-line error naming the file."""
    import ase.io

    if Path(path).is_dir():
        raise UsageError(f"the structure file {path} is a folder.")
    if not Path(path).is_file():
        raise FileNotFoundError(f"Structure file {path} does not exist.")
    try:
        atoms = ase.io.read(path)
    except Exception as error:  # ASE raises many kinds (XYZError, StopIteration, KeyError, ...) for bad files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"cannot read the structure file {path}: {reason}") from None
    if isinstance(atoms, list) or len(atoms) == 0:
        raise UsageError(f"the structure file {path} holds no atoms.")
    return atoms
