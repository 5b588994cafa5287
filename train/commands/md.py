"""``ponita md``: molecular dynamics with ASE and a potential."""

import argparse
import math
from pathlib import Path

from ._common import UsageError, add_structure_arguments, md_structure, print_drift, print_md_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``md``."""
    md = commands.add_parser("md", help="molecular dynamics with ASE and a potential")
    add_structure_arguments(md)
    md.add_argument("--steps", type=int, default=1000)
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--ensemble", choices=("nve", "langevin"), default="nve")
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--float64", action="store_true", help="evaluate the potential in float64")
    md.add_argument("--compile", action="store_true",
                    help="compile energy and forces into one graph first (≈ 1 min), then run 2-3x faster")
    md.add_argument("--out", default="traj.xyz", help="extxyz trajectory")
    md.set_defaults(handler=_md)


def _md(args: argparse.Namespace) -> int:
    from ponita.models import PonitaCalculator, load_potential

    from ..deploy._molecular_dynamics import run_md

    if args.steps < 1 or not 0 < args.timestep < math.inf or not 0 <= args.temperature < math.inf:
        raise UsageError(
            f"--steps must be ≥ 1, --timestep a finite number > 0 fs and --temperature a finite number ≥ 0 K; "
            f"got {args.steps}, {args.timestep}, {args.temperature}."
        )
    out = Path(args.out)
    if out.is_dir() or not out.resolve().parent.is_dir():
        raise UsageError(f"--out {out} must be a file in an existing folder.")
    model = load_potential(args.checkpoint)
    atoms = md_structure(args, model)
    atoms.calc = PonitaCalculator(model.double() if args.float64 else model, compile=args.compile)
    try:
        result = run_md(atoms, args.steps, args.temperature, args.ensemble, args.timestep, out,
                        callback=print_md_progress, callback_every=max(1, args.steps // 10))
    except Exception:
        out.unlink(missing_ok=True)  # no partial trajectory after an error (an interrupt keeps it)
        raise
    print_drift(result, args.ensemble)
    print(f"Trajectory: {out}")
    return 0
