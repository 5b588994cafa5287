"""``ponita data``: generate the N-body benchmark (``nbody``) or process QM9 into the cache (``qm9``)."""

import argparse
import time
from pathlib import Path
from typing import Any

from ponita.datasets._rdkit import require_rdkit

from ._common import UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``data nbody`` and ``data qm9``."""
    data = commands.add_parser("data", help="generate datasets")
    datasets = data.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    nbody = datasets.add_parser(
        "nbody", help="generate the charged 5-body benchmark (EGNN's nbody_small, exactly; about a minute)"
    )
    nbody.add_argument("--out", help="folder for the .npz files (default: ~/.cache/ponita/nbody, where training looks)")
    nbody.set_defaults(handler=_data_nbody)
    qm9 = datasets.add_parser("qm9", help="process QM9 from the qm9pack package into the cache (about two minutes)")
    qm9.add_argument("--out", help="cache folder (default: ~/.cache/ponita/qm9, where training looks)")
    qm9.set_defaults(handler=_data_qm9)


def _data_nbody(args: argparse.Namespace) -> int:
    from ponita.datasets import default_nbody_dir, write_nbody

    out = _data_folder(args.out, default_nbody_dir())
    print(f"Generating the charged 5-body benchmark into {out}", flush=True)
    start = time.time()
    paths = write_nbody(out, _progress_printer("simulations"))
    print(f"\nDone in {time.time() - start:.0f} s:")
    for name, path in paths.items():
        print(f"  {name:6s} {path}")
    return 0


def _data_qm9(args: argparse.Namespace) -> int:
    from ponita.datasets import default_qm9_dir, load_qm9, qm9pack_data_dir

    out = _data_folder(args.out, default_qm9_dir())
    qm9pack_data_dir()  # a missing qm9pack or RDKit is reported before anything else
    require_rdkit("Processing QM9")
    print(f"Processing QM9 from qm9pack into {out}", flush=True)
    start = time.time()
    qm9 = load_qm9(out, _progress_printer("molecules"))
    print(f"\nDone in {time.time() - start:.0f} s: {len(qm9)} molecules; bond perception / feature source: "
          f"{qm9.perception}")
    return 0


def _data_folder(out: str | None, default: Path) -> Path:
    folder = Path(out) if out else default
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder.")
    return folder


def _progress_printer(unit: str) -> Any:
    start = time.time()

    def progress(done: int, total: int) -> None:
        print(f"\r  {done:6d}/{total} {unit}  ({time.time() - start:.0f} s)", end="", flush=True)

    return progress
