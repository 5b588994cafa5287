"""``ponita demo``: train the quick preset on the bundled ethanol data, test it and run NVE dynamics."""

import argparse
import shutil
import time
from pathlib import Path

from ponita.datasets import bundled_data_dir

from .._config import load_config
from .._task import task_class
from ._common import EpochPrinter, UsageError, check_output, print_drift, print_md_progress, print_paths, print_test

DEMO_OUTPUT = "runs/demo"
DEMO_MD_STEPS = 200


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``demo``."""
    demo = commands.add_parser(
        "demo", help="train the quick preset on the bundled ethanol data, test it and run NVE dynamics"
    )
    demo.add_argument("--output", default=DEMO_OUTPUT, help=f"run folder (default: {DEMO_OUTPUT})")
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides of the quick preset")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    import ase

    from ponita.datasets import load_rmd17
    from ponita.models import PonitaCalculator, load_potential

    from ..deploy._molecular_dynamics import run_md
    from .._run import train

    config = load_config(
        "md17", "quick", overrides=[f"output={args.output}", "molecule=ethanol", "split=1", *args.overrides]
    )
    check_output(config.output)
    print(f"Demo: training the 'quick' preset on the bundled rMD17 ethanol data ({bundled_data_dir()}) for at "
          f"most {config.max_time_minutes} min, then testing on its 1000 test frames.", flush=True)
    _clear_previous_demo(Path(config.output))
    start = time.time()
    result = train(config, callbacks=[EpochPrinter()])
    print(f"\nTrained and tested in {time.time() - start:.0f} s.")
    print_test(task_class("md17"), result.test_metrics)

    frame = load_rmd17("ethanol", "test", split=1)[0]
    atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    atoms.calc = PonitaCalculator(load_potential(result.model))
    trajectory = Path(config.output) / "nve.xyz"
    print(f"\nNVE dynamics of ethanol: {DEMO_MD_STEPS} steps of 0.5 fs from 300 K")
    md = run_md(atoms, DEMO_MD_STEPS, 300.0, "nve", 0.5, trajectory, callback=print_md_progress)
    print_drift(md, "nve")
    print_paths(result)
    print(f"  trajectory:      {trajectory}")
    return 0


_RUN_FILES = ("config.yaml", "potential.pt", "test.json", "learning_curve.png", "nve.xyz")
_RUN_FOLDERS = ("checkpoints", "logs", "tensorboard")


def _clear_previous_demo(output: Path) -> None:
    """Removes the files of an earlier ``ponita demo`` run in ``output``, and nothing else.

    Raises:
        UsageError: if ``output`` is a file, or a folder that holds anything but the files of a run.
    """
    if not output.exists():
        return
    if not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder.")
    unknown = sorted(p.name for p in output.iterdir() if p.name not in (*_RUN_FILES, *_RUN_FOLDERS))
    if unknown:
        raise UsageError(f"--output {output} holds files that are not those of a ponita run "
                         f"({', '.join(unknown[:5])}); choose an empty or new folder.")
    for name in _RUN_FOLDERS:
        shutil.rmtree(output / name, ignore_errors=True)
    for name in _RUN_FILES:
        (output / name).unlink(missing_ok=True)
