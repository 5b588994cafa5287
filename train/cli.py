"""The ``ponita`` command: ``train``, ``test``, ``md`` and ``demo``. Argument parsing and printing only."""

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl

from ponita.datasets import RMD17_MOLECULES, bundled_data_dir

from ._config import load_config, preset_names

DEMO_OUTPUT = "runs/demo"
DEMO_MD_STEPS = 200


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ponita`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"ponita {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponita", description="PONITA interatomic potentials on rMD17.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a potential")
    datasets = train.add_subparsers(dest="dataset", required=True)
    md17 = datasets.add_parser(
        "md17", help="train on rMD17: 950/50 frames of train_k, test on test_k",
        description="Train on 950 frames of rMD17 train_k, validate on the other 50, test on test_k. "
        "Fields are set by the preset, then --config, then KEY=VALUE overrides (e.g. lr=1e-3 max_epochs=100).",
    )
    md17.add_argument("--molecule", choices=RMD17_MOLECULES, help="rMD17 molecule (default: the preset's)")
    md17.add_argument("--split", type=int, help="rMD17 split 1-5")
    md17.add_argument("--data-dir", help="folder with the rMD17 files (default: bundled ethanol split 1)")
    md17.add_argument("--preset", default="paper", choices=preset_names(), help="config preset (default: paper)")
    md17.add_argument("--config", help="YAML file of config fields, applied after the preset")
    md17.add_argument("--output", help="run folder")
    md17.add_argument("--resume", help="Lightning checkpoint (e.g. RUN/checkpoints/last.ckpt) to continue")
    md17.add_argument("--devices", type=int, help="devices per node")
    md17.add_argument("--num-nodes", type=int, help="nodes")
    md17.add_argument("--strategy", help="auto, ddp or ddp_spawn")
    md17.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    md17.set_defaults(handler=_train)

    test = commands.add_parser("test", help="test a potential.pt on an rMD17 test split")
    test.add_argument("checkpoint", help="potential.pt written by `ponita train`")
    test.add_argument("--split", type=int, help="rMD17 split (default: the training split)")
    test.add_argument("--data-dir", help="folder with the rMD17 files (default: as in training)")
    test.add_argument("--molecule", choices=RMD17_MOLECULES, help="default: the training molecule")
    test.add_argument("--rotations", type=int, default=0, help="also average over N random rotations")
    test.add_argument("--json", help="write the results to this JSON file")
    test.set_defaults(handler=_test)

    md = commands.add_parser("md", help="molecular dynamics with ASE and a potential")
    md.add_argument("checkpoint", help="potential.pt written by `ponita train`")
    start = md.add_mutually_exclusive_group(required=True)
    start.add_argument("--structure", help="any ASE-readable structure file")
    start.add_argument("--from-data", choices=RMD17_MOLECULES, metavar="MOLECULE", help="start from an rMD17 frame")
    md.add_argument("--split", type=int, default=1, help="rMD17 split for --from-data")
    md.add_argument("--frame", type=int, default=0, help="test frame for --from-data")
    md.add_argument("--data-dir", help="folder with the rMD17 files for --from-data")
    md.add_argument("--steps", type=int, default=1000)
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--ensemble", choices=("nve", "langevin"), default="nve")
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--float64", action="store_true", help="evaluate the potential in float64")
    md.add_argument("--out", default="traj.xyz", help="extxyz trajectory")
    md.set_defaults(handler=_md)

    demo = commands.add_parser(
        "demo", help="train the quick preset on the bundled ethanol data, test it and run NVE dynamics"
    )
    demo.add_argument("--output", default=DEMO_OUTPUT, help=f"run folder (default: {DEMO_OUTPUT})")
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides of the quick preset")
    demo.set_defaults(handler=_demo)
    return parser


def _train(args: argparse.Namespace) -> int:
    from ._run import resume_config, train_md17

    flags = {"molecule": args.molecule, "split": args.split, "data_dir": args.data_dir, "output": args.output,
             "devices": args.devices, "num_nodes": args.num_nodes, "strategy": args.strategy}
    overrides = [f"{key}={value}" for key, value in flags.items() if value is not None] + list(args.overrides)
    if args.resume:
        config = resume_config(args.resume, overrides)
    else:
        config = load_config(args.preset, args.config, overrides)
    print(f"Training on rMD17 {config.molecule} split {config.split} → {config.output}", flush=True)
    start = time.time()
    result = train_md17(config, resume=args.resume, callbacks=[_EpochPrinter()])
    if result.potential is None:  # a non-zero rank of a distributed run
        return 0
    print(f"\nTrained in {time.time() - start:.0f} s.")
    if result.test_metrics is not None:
        _print_metrics(result.test_metrics)
    _print_paths(result)
    return 0


def _test(args: argparse.Namespace) -> int:
    from ._run import test_potential

    metrics = test_potential(args.checkpoint, args.split, args.data_dir, args.molecule, args.rotations)
    _print_metrics(metrics)
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
        print(f"Results written to {args.json}")
    return 0


def _md(args: argparse.Namespace) -> int:
    import ase.io

    from ponita.datasets import load_rmd17
    from ponita.models import PonitaCalculator, load_potential

    from ._molecular_dynamics import run_md

    if args.structure:
        atoms = ase.io.read(args.structure)
    else:
        frame = load_rmd17(args.from_data, "test", split=args.split, data_dir=args.data_dir)[args.frame]
        atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    model = load_potential(args.checkpoint)
    atoms.calc = PonitaCalculator(model.double() if args.float64 else model)
    result = run_md(atoms, args.steps, args.temperature, args.ensemble, args.timestep, args.out,
                    callback=_print_md_progress, callback_every=max(1, args.steps // 10))
    _print_drift(result, args.ensemble)
    print(f"Trajectory: {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import ase

    from ponita.datasets import load_rmd17
    from ponita.models import PonitaCalculator, load_potential

    from ._molecular_dynamics import run_md
    from ._run import train_md17

    config = load_config("quick", overrides=[f"output={args.output}", "molecule=ethanol", "split=1", *args.overrides])
    print(f"Demo: training the 'quick' preset on the bundled rMD17 ethanol data ({bundled_data_dir()}) for at "
          f"most {config.max_time_minutes} min, then testing on its 1000 test frames.", flush=True)
    previous = Path(config.output)
    if (previous / "config.yaml").is_file():
        shutil.rmtree(previous)  # the demo starts afresh in its own folder
    start = time.time()
    result = train_md17(config, callbacks=[_EpochPrinter()])
    print(f"\nTrained and tested in {time.time() - start:.0f} s.")
    _print_metrics(result.test_metrics)

    frame = load_rmd17("ethanol", "test", split=1)[0]
    atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    atoms.calc = PonitaCalculator(load_potential(result.potential))
    trajectory = Path(config.output) / "nve.xyz"
    print(f"\nNVE dynamics of ethanol: {DEMO_MD_STEPS} steps of 0.5 fs from 300 K")
    md = run_md(atoms, DEMO_MD_STEPS, 300.0, "nve", 0.5, trajectory, callback=_print_md_progress)
    _print_drift(md, "nve")
    _print_paths(result)
    print(f"  trajectory:      {trajectory}")
    return 0


class _EpochPrinter(pl.Callback):
    """Prints one line per epoch with the latest validation scores (rank 0 only)."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if not trainer.is_global_zero or "val/forces_mae" not in metrics:
            return
        loss = metrics.get("train/loss")
        loss_text = f"loss {float(loss):.4g}  " if loss is not None else ""
        print(f"  epoch {trainer.current_epoch + 1:4d}/{trainer.max_epochs}  {loss_text}"
              f"val force MAE {float(metrics['val/forces_mae']):8.2f} meV/Å  "
              f"val energy MAE {float(metrics['val/energy_mae']):8.2f} meV  "
              f"({time.time() - self.start:.0f} s)", flush=True)


def _print_metrics(metrics: dict[str, object]) -> None:
    print(f"\nTest ({metrics['num_frames']} frames): {metrics['protocol']}")
    print(f"  {'':24s} {'energy MAE (meV)':>18s} {'force MAE (meV/Å)':>18s}")
    print(f"  {'single pass':24s} {metrics['energy_mae_meV']:18.3f} {metrics['forces_mae_meV_per_A']:18.3f}")
    if "rotations" in metrics:
        label = f"{metrics['rotations']} rotations averaged"
        print(f"  {label:24s} {metrics['rotation_averaged_energy_mae_meV']:18.3f} "
              f"{metrics['rotation_averaged_forces_mae_meV_per_A']:18.3f}")


def _print_md_progress(step: int, potential: float, total: float, temperature: float) -> None:
    print(f"  step {step:6d}  E_pot {potential:14.4f} eV  E_tot {total:14.4f} eV  T {temperature:7.1f} K", flush=True)


def _print_drift(result: object, ensemble: str) -> None:
    note = "" if ensemble == "nve" else " (Langevin does not conserve energy)"
    print(f"Energy drift{note}: max |E_tot - E_tot(0)| = {result.max_drift * 1000:.3f} meV "
          f"= {result.max_drift_per_atom * 1000:.3f} meV/atom over {result.steps[-1]} steps")


def _print_paths(result: object) -> None:
    print("Outputs:")
    print(f"  potential:       {result.potential}")
    print(f"  best checkpoint: {result.best_checkpoint}")
    print(f"  last checkpoint: {result.last_checkpoint}  (continue with --resume)")
    print(f"  logs:            {result.metrics_csv}")
    print(f"  learning curve:  {result.learning_curve}")
    print(f"  test results:    {result.test_json}")


if __name__ == "__main__":
    sys.exit(main())
