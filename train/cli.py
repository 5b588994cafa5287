"""The ``ponita`` command: ``train <task>``, ``test``, ``md``, ``data``, ``sample``, ``evaluate-molecules``, ``demo``. Argument parsing, checks and printing only.

Every command checks its arguments before it starts work, reports a bad argument or an unreadable file
as one line on stderr with exit status 2, and leaves no partial output behind.
"""

import argparse
import json
import logging
import math
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ponita.datasets import RMD17_MOLECULES, bundled_data_dir
from ponita.datasets._rdkit import MissingDependencyError, require_rdkit

from ._config import load_config, preset_names
from ._task import Task, task_class, tasks

DEMO_OUTPUT = "runs/demo"
DEMO_MD_STEPS = 200
_SHARED_TRAIN_FLAGS = {
    "--output": ("output", {"help": "run folder"}),
    "--devices": ("devices", {"type": int, "help": "devices per node"}),
    "--num-nodes": ("num_nodes", {"type": int, "help": "nodes"}),
    "--strategy": ("strategy", {"help": "auto, ddp or ddp_spawn"}),
}


class UsageError(ValueError):
    """A bad command-line argument; reported as one line."""


# Warnings of our dependencies about their own dependencies: nothing a user of `ponita` can act on.
_THIRD_PARTY_WARNINGS = (
    r"`torch\.jit\.script` is (deprecated|not supported)",  # e3nn and torch_geometric script modules
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",    # Lightning's pytree helpers on torch ≥ 2.10
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ponita`` console script; returns the exit status."""
    for message in _THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("ponita.datasets").setLevel(logging.INFO)  # progress of first-use data processing
    try:
        return args.handler(args)
    except (ValueError, OSError, MissingDependencyError) as error:
        print(f"ponita {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from ponita.models import KARRAS_CHURN, KARRAS_DEFAULT_STEPS, KARRAS_SIGMA_MAX, SAMPLERS

    parser = argparse.ArgumentParser(prog="ponita", description="PONITA: SE(n)-equivariant models, trained and used.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a task's model", description="Train a task's model, then test it.")
    train.add_argument("--list", action="store_true", help="list the tasks and their presets")
    train.set_defaults(handler=_list_tasks)
    task_parsers = train.add_subparsers(dest="task", metavar="TASK")
    for name, cls in sorted(tasks().items()):
        sub = task_parsers.add_parser(
            name, help=(cls.__doc__ or name).splitlines()[0],
            description=f"{(cls.__doc__ or name).splitlines()[0]} Fields are set by the preset, then --config, then "
            "KEY=VALUE overrides (e.g. lr=1e-3 model.hidden_dim=64; bare names work when unambiguous).",
        )
        presets = preset_names(name)
        sub.add_argument("--preset", default=cls.default_preset, choices=presets,
                         help=f"config preset (default: {cls.default_preset})")
        sub.add_argument("--config", help="YAML file of config fields, applied after the preset")
        sub.add_argument("--resume", help="Lightning checkpoint (e.g. RUN/checkpoints/last.ckpt) to continue")
        sub.add_argument("--pause-after", type=_positive_float, metavar="MINUTES",
                         help="stop after this many minutes of this sitting and write last.ckpt (no test); "
                         "--resume it later. Unlike max_time_minutes, the schedule is unchanged")
        _add_flags(sub, {**_SHARED_TRAIN_FLAGS, **cls.train_flags})
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
        sub.set_defaults(handler=_train, flags={**_SHARED_TRAIN_FLAGS, **cls.train_flags})

    test = commands.add_parser(
        "test", help="test a model file written by `ponita train` on its task's test data",
        description="Test a model file on its task's test data. The task and what it was trained on come from "
        "the file; `ponita test CKPT --help` lists the options for that file's task.",
        epilog="\n".join(f"{name} options: {', '.join(cls.test_flags) or 'none'}" for name, cls in sorted(tasks().items())),
    )
    test.add_argument("checkpoint", help="model file written by `ponita train` (e.g. potential.pt)")
    test.add_argument("options", nargs=argparse.REMAINDER, help="--json FILE, --batch-size N and the task's options")
    test.set_defaults(handler=_test)

    md = commands.add_parser("md", help="molecular dynamics with ASE and a potential")
    _add_structure_arguments(md)
    md.add_argument("--steps", type=int, default=1000)
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--ensemble", choices=("nve", "langevin"), default="nve")
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--float64", action="store_true", help="evaluate the potential in float64")
    md.add_argument("--compile", action="store_true",
                    help="compile energy and forces into one graph first (≈ 1 min), then run 2-3x faster")
    md.add_argument("--out", default="traj.xyz", help="extxyz trajectory")
    md.set_defaults(handler=_md)

    bench = commands.add_parser("bench", help="benchmarks: a potential's inference and MD speed, this CPU's precisions")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    bench_md = benchmarks.add_parser(
        "md", help="inference ms/frame and MD steps/s of a potential, eager and compiled",
        description="Times a potential where users feel it: energy and forces of one structure (median ms per "
        "frame) and NVE molecular dynamics with ASE (steps/s), eagerly and compiled (`ponita md --compile`).",
    )
    _add_structure_arguments(bench_md)
    bench_md.add_argument("--steps", type=int, default=300, help="MD steps timed (default 300)")
    bench_md.add_argument("--frames", type=int, default=50, help="single evaluations timed (default 50)")
    bench_md.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    bench_md.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"])
    bench_md.add_argument("--json", help="also write the results to this JSON file")
    bench_md.set_defaults(handler=_bench_md)
    bench_precision = benchmarks.add_parser(
        "precision", help="fp32 against bf16 on this machine (a GEMM, md17 training steps); what precision=auto picks",
        description="Times a bf16 and an fp32 matrix product (what `precision: auto` decides by) and eager md17 "
        "training steps of a preset in 32-true and bf16-mixed, so you can check a preset's precision on your machine.",
    )
    bench_precision.add_argument("--preset", default="quick", help="md17 preset (default quick)")
    bench_precision.add_argument("--molecule", default="ethanol", choices=RMD17_MOLECULES,
                                 help="rMD17 molecule (default ethanol, bundled)")
    bench_precision.add_argument("--data-dir", help="folder with the rMD17 files (default: the bundled ethanol data)")
    bench_precision.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the presets)")
    bench_precision.add_argument("--steps", type=int, default=20, help="training steps per timed block (default 20)")
    bench_precision.set_defaults(handler=_bench_precision)

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

    sample = commands.add_parser(
        "sample", help="sample molecules from a generator written by `ponita train qm9-edm`",
        description="Sample molecules: a 'vp' generator with EDM's ancestral sampler or deterministic DDIM (fewer "
        "--steps: respaced), a 'karras' generator with the Heun sampler; same --seed, same molecules.",
    )
    sample.add_argument("checkpoint", help="generator.pt written by `ponita train qm9-edm`")
    sample.add_argument("-n", "--num", type=int, default=100, help="molecules to sample (default 100)")
    sample.add_argument("-o", "--out", default="samples.sdf", help="output .sdf (RDKit, EDM's bonds) or .xyz")
    sample.add_argument("--n-atoms", type=int, help="atoms per molecule (default: drawn from the training histogram)")
    sample.add_argument("--steps", type=int,
                        help=f"sampler steps (default: all T of a 'vp' generator, {KARRAS_DEFAULT_STEPS} Heun steps of "
                        "a 'karras' one)")
    sample.add_argument("--sampler", choices=SAMPLERS,
                        help="'vp' generators: EDM's ancestral sampler (default) or deterministic DDIM; 'karras' "
                        "generators: heun")
    sample.add_argument("--spacing", type=float,
                        help="with fewer --steps, visit the times T·(k/K)^SPACING: 1 uniform, 2 (default) denser "
                        "near the data, where fewer steps lose the most")
    sample.add_argument("--sigma-max", type=float, default=KARRAS_SIGMA_MAX,
                        help=f"heun: the noise level (Å) it starts from (default {KARRAS_SIGMA_MAX:g})")
    sample.add_argument("--churn", type=float, default=KARRAS_CHURN,
                        help=f"heun: stochasticity S_churn (default {KARRAS_CHURN:g}; 0: deterministic after the start)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", type=int, default=100, help="molecules per batch")
    sample.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to sample (default cpu)")
    sample.add_argument("--metrics", action="store_true", help="print EDM's metrics and write them next to --out")
    sample.add_argument("--novelty", action="store_true",
                        help="with --metrics: also novelty against EDM's QM9 training molecules (≈ 1 min once)")
    sample.add_argument("--image", help="draw the molecules (RDKit, first 50) into this PNG")
    sample.set_defaults(handler=_sample)

    evaluate = commands.add_parser(
        "evaluate-molecules", help="EDM's metrics (stability, validity, uniqueness) of molecules in an SDF or XYZ file",
        description="Atom and molecule stability, validity and uniqueness exactly as EDM computes them (bonds from "
        "distances), for molecules from any generator.",
    )
    evaluate.add_argument("file", help="SDF (RDKit) or any ASE-readable file, e.g. multi-frame XYZ")
    evaluate.add_argument("--json", help="write the metrics to this JSON file")
    evaluate.add_argument("--novelty", action="store_true", help="also novelty against EDM's QM9 training molecules")
    evaluate.set_defaults(handler=_evaluate_molecules)

    demo = commands.add_parser(
        "demo", help="train the quick preset on the bundled ethanol data, test it and run NVE dynamics"
    )
    demo.add_argument("--output", default=DEMO_OUTPUT, help=f"run folder (default: {DEMO_OUTPUT})")
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides of the quick preset")
    demo.set_defaults(handler=_demo)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for flag, (key, options) in flags.items():
        metavar = None if "choices" in options else flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag, dest=_dest(flag), metavar=metavar, **options)


def _dest(flag: str) -> str:
    return "flag_" + flag.lstrip("-").replace("-", "_")


def _flag_overrides(args: argparse.Namespace, flags: dict[str, tuple[str, dict[str, Any]]]) -> list[str]:
    """``key=value`` overrides for the flags that were given."""
    values = {key: getattr(args, _dest(flag)) for flag, (key, _) in flags.items()}
    return [f"{key}={value}" for key, value in values.items() if value is not None]


def _list_tasks(args: argparse.Namespace) -> int:
    if not args.list:
        raise UsageError("name a task (`ponita train TASK`); `ponita train --list` lists them.")
    for name, cls in sorted(tasks().items()):
        print(f"{name:10s} {(cls.__doc__ or '').splitlines()[0]}")
        for preset in preset_names(name):
            default = "  (default)" if preset == cls.default_preset else ""
            print(f"{'':10s}   --preset {preset}{default}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ._run import resume_config, train

    overrides = _flag_overrides(args, args.flags) + list(args.overrides)
    if args.resume:
        config = resume_config(args.resume, overrides)
        if config.task != args.task:
            raise UsageError(f"{args.resume} is a checkpoint of task {config.task!r}; use `ponita train {config.task}`.")
    else:
        config = load_config(args.task, args.preset, args.config, overrides)
    _check_output(config.output)
    print(f"Training task {config.task} → {config.output}", flush=True)
    start = time.time()
    result = train(config, resume=args.resume, callbacks=[_EpochPrinter()], pause_after_minutes=args.pause_after)
    if result.paused:
        print(f"\nPaused after {time.time() - start:.0f} s. Continue with:\n  ponita train {config.task} "
              f"--resume {result.last_checkpoint}", flush=True)
        return 0
    if result.model is None:  # a non-zero rank of a distributed run
        return 0
    print(f"\nTrained in {time.time() - start:.0f} s.")
    if result.test_metrics is not None:
        _print_test(task_class(config.task), result.test_metrics)
    _print_paths(result)
    return 0


def _test(args: argparse.Namespace) -> int:
    from ponita.models import read_checkpoint

    from ._run import test_checkpoint

    checkpoint = read_checkpoint(args.checkpoint)
    if checkpoint.task is None:
        raise UsageError(f"{args.checkpoint} records no task; it was not written by `ponita train`.")
    cls = task_class(checkpoint.task)
    parser = argparse.ArgumentParser(prog=f"ponita test {args.checkpoint}", description=f"Test a {cls.name} model.")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--batch-size", type=int, help="samples per forward pass (default: as in training)")
    parser.add_argument("--artefacts", help="folder for the task's output files, e.g. plots (default: none)")
    _add_flags(parser, cls.test_flags)
    options = parser.parse_args(args.options)
    if options.json is not None and (Path(options.json).is_dir() or not Path(options.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {options.json} must be a file in an existing folder.")
    if options.batch_size is not None and options.batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {options.batch_size}.")
    overrides = _flag_overrides(options, cls.test_flags)
    record = test_checkpoint(checkpoint, overrides, options.batch_size, options.artefacts)
    _print_test(cls, record)
    if options.json:
        Path(options.json).write_text(json.dumps(record, indent=2))
        print(f"Results written to {options.json}")
    return 0


def _md(args: argparse.Namespace) -> int:
    from ponita.models import PonitaCalculator, load_potential

    from ._molecular_dynamics import run_md

    if args.steps < 1 or not 0 < args.timestep < math.inf or not 0 <= args.temperature < math.inf:
        raise UsageError(
            f"--steps must be ≥ 1, --timestep a finite number > 0 fs and --temperature a finite number ≥ 0 K; "
            f"got {args.steps}, {args.timestep}, {args.temperature}."
        )
    out = Path(args.out)
    if out.is_dir() or not out.resolve().parent.is_dir():
        raise UsageError(f"--out {out} must be a file in an existing folder.")
    model = load_potential(args.checkpoint)
    atoms = _md_structure(args, model)
    atoms.calc = PonitaCalculator(model.double() if args.float64 else model, compile=args.compile)
    try:
        result = run_md(atoms, args.steps, args.temperature, args.ensemble, args.timestep, out,
                        callback=_print_md_progress, callback_every=max(1, args.steps // 10))
    except Exception:
        out.unlink(missing_ok=True)  # no partial trajectory after an error (an interrupt keeps it)
        raise
    _print_drift(result, args.ensemble)
    print(f"Trajectory: {out}")
    return 0


def _add_structure_arguments(parser: argparse.ArgumentParser) -> None:
    """The potential and the structure of ``ponita md`` and ``ponita bench md`` (read by :func:`_md_structure`)."""
    parser.add_argument("checkpoint", help="potential.pt written by `ponita train md17`")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--structure", help="any ASE-readable structure file")
    start.add_argument("--from-data", choices=RMD17_MOLECULES, metavar="MOLECULE", help="start from an rMD17 test frame")
    parser.add_argument("--split", type=int, default=1, help="rMD17 split for --from-data")
    parser.add_argument("--frame", type=int, default=0, help="test frame for --from-data")
    parser.add_argument("--data-dir", help="folder with the rMD17 files for --from-data")


def _bench_precision(args: argparse.Namespace) -> int:
    import torch

    from ponita.datasets import load_rmd17

    from ._machine import benchmark_precisions, choose_precision, cpu_bf16_speedup, machine_summary

    if args.threads < 1 or args.steps < 1:
        raise UsageError(f"--threads and --steps must be ≥ 1; got {args.threads}, {args.steps}.")
    config = load_config("md17", args.preset, overrides=[f"molecule={args.molecule}", "compile_step=false"])
    frames = load_rmd17(args.molecule, "train", split=1, data_dir=args.data_dir)[:100]
    torch.set_num_threads(args.threads)
    print(f"machine: {machine_summary(args.threads)}")
    print(f"bf16 GEMM (1024×128 @ 128×128): {cpu_bf16_speedup(args.threads):.2f}× the speed of fp32")
    print(f"precision=auto picks: {choose_precision('auto', 'cpu')}")
    print(f"md17 {args.preset} / {args.molecule}, batch {config.batch_size}, eager training steps:", flush=True)
    timings = benchmark_precisions(config, frames, args.steps)
    for precision, ms in timings.items():
        print(f"  {precision:10s} {ms:8.1f} ms/step")
    print(f"  bf16-mixed is {timings['32-true'] / timings['bf16-mixed']:.2f}× the speed of 32-true here")
    return 0


def _md_structure(args: argparse.Namespace, model: Any) -> Any:
    """The structure of ``--structure`` or ``--from-data``, checked against the potential's elements."""
    import ase

    from ponita.datasets import load_rmd17

    if args.structure:
        atoms = _read_structure(args.structure)
    else:
        frames = load_rmd17(args.from_data, "test", split=args.split, data_dir=args.data_dir)
        if not 0 <= args.frame < len(frames):
            raise UsageError(f"--frame must lie in 0..{len(frames) - 1}, got {args.frame}.")
        frame = frames[args.frame]
        atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    known = set(model.config.atomic_numbers)
    unknown = sorted(set(atoms.get_atomic_numbers().tolist()) - known)
    if unknown:
        raise UsageError(f"the structure has element(s) {unknown} that the potential was not trained on ({sorted(known)}).")
    atoms.pbc = False
    return atoms


def _bench_md(args: argparse.Namespace) -> int:
    import torch

    from ponita.models import load_potential

    from ._molecular_dynamics import benchmark_md

    if args.steps < 1 or args.frames < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError(f"--steps, --frames and --threads must be ≥ 1; got {args.steps}, {args.frames}, {args.threads}.")
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {args.json} must be a file in an existing folder.")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_potential(args.checkpoint)
    atoms = _md_structure(args, model)
    print(f"{len(atoms)} atoms, {torch.get_num_threads()} thread(s), {args.steps} NVE steps of 0.5 fs")
    print(f"{'mode':9s} {'first call s':>12s} {'inference ms':>13s} {'MD steps/s':>11s} {'drift eV':>9s}")
    rows = []
    for mode in args.modes:
        row = benchmark_md(model, atoms, args.steps, args.frames, compile=mode == "compiled")
        rows.append({"mode": mode, **row})
        print(f"{mode:9s} {row['first_call_s']:12.1f} {row['inference_ms']:13.2f} {row['md_steps_per_s']:11.0f} "
              f"{row['md_drift_eV']:9.2e}", flush=True)
    if args.json:
        record = {"checkpoint": str(args.checkpoint), "structure": args.structure or f"rMD17 {args.from_data} test "
                  f"frame {args.frame}", "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
                  "results": rows}
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"Results written to {args.json}")
    return 0


def _read_structure(path: str) -> Any:
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


def _sample(args: argparse.Namespace) -> int:
    import torch

    from ponita.datasets import draw_molecules, molecule_metrics, write_molecules
    from ponita.models import DEFAULT_SPACING, default_sample_steps, describe_model, read_checkpoint

    from ._edm import sample_molecules

    out = Path(args.out)
    if out.suffix.lower() not in (".sdf", ".xyz") or out.is_dir() or not out.resolve().parent.is_dir():
        raise UsageError(f"-o {out} must be a .sdf or .xyz file in an existing folder.")
    image = Path(args.image) if args.image else None
    if image is not None and (image.suffix.lower() != ".png" or not image.resolve().parent.is_dir()):
        raise UsageError(f"--image {image} must be a .png file in an existing folder.")
    if args.spacing is not None and not 0 < args.spacing < math.inf:
        raise UsageError(f"--spacing must be a finite number > 0, got {args.spacing}.")
    if args.num < 1 or args.batch_size < 1 or (args.n_atoms is not None and not 1 <= args.n_atoms <= 100):
        raise UsageError(f"-n and --batch-size must be ≥ 1 and --n-atoms in 1..100; got {args.num}, "
                         f"{args.batch_size}, {args.n_atoms}.")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA GPU here; use --device cpu.")
    needs_rdkit = [name for name, needed in (("an .sdf output", out.suffix.lower() == ".sdf"),
                                             ("--image", image is not None), ("--metrics", args.metrics)) if needed]
    if needs_rdkit:
        require_rdkit(needs_rdkit[0])  # before sampling
    checkpoint = read_checkpoint(args.checkpoint)
    if checkpoint.model_class != "EDM":
        raise UsageError(f"{args.checkpoint} holds {describe_model(checkpoint.model_class)}, not a generator; pass the "
                         "generator.pt of `ponita train qm9-edm`.")
    model = checkpoint.build(args.device)
    karras = model.config.objective == "karras"
    sampler = args.sampler or ("heun" if karras else "ancestral")
    if karras != (sampler == "heun"):
        raise UsageError(f"--sampler {sampler} does not fit this generator (objective {model.config.objective!r}); "
                         f"use {'heun' if karras else 'ancestral or ddim'}.")
    if not 0 < args.sigma_max < math.inf or not 0 <= args.churn < math.inf:
        raise UsageError(f"--sigma-max must be a finite number > 0 and --churn ≥ 0; got {args.sigma_max}, {args.churn}.")
    if args.steps is not None and not 1 <= args.steps <= (10_000 if karras else model.config.steps):
        raise UsageError(f"--steps must lie in 1..{10_000 if karras else model.config.steps}, got {args.steps}.")
    default_steps = default_sample_steps(model.config.objective, model.config.steps)
    spacing = args.spacing if args.spacing is not None else DEFAULT_SPACING
    generator = torch.Generator(args.device).manual_seed(args.seed)
    start, molecules = time.time(), []
    while len(molecules) < args.num:
        count = min(args.batch_size, args.num - len(molecules))
        molecules += sample_molecules(model, count, args.steps, count, generator, args.n_atoms, sampler, spacing,
                                      churn=args.churn, sigma_max=args.sigma_max)
        print(f"\r  sampled {len(molecules)}/{args.num} molecules  ({time.time() - start:.0f} s)", end="", flush=True)
    seconds = (time.time() - start) / len(molecules)
    write_molecules(molecules, str(out))
    print(f"\nWrote {len(molecules)} molecules to {out} ({seconds:.3f} s per molecule).")
    if image is not None:
        draw_molecules(molecules[:50], str(image))
        print(f"Drew {min(50, len(molecules))} molecules into {image}")
    if args.metrics:
        training = _training_smiles() if args.novelty else None
        metrics = {**molecule_metrics(molecules, training), "seconds_per_molecule": seconds,
                   "steps": args.steps or default_steps, "sampler": sampler, "spacing": spacing,
                   **({"sigma_max": args.sigma_max, "churn": args.churn} if karras else {}),
                   "seed": args.seed,
                   "checkpoint": args.checkpoint}
        for name in ("atom_stability", "molecule_stability", "validity", "uniqueness", "valid_and_unique", "novelty"):
            if name in metrics:
                print(f"  {name.replace('_', ' '):20s} {100 * metrics[name]:6.2f} %")
        out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
        print(f"Metrics written to {out.with_suffix('.json')}")
    return 0


def _training_smiles() -> set[str] | None:
    """EDM's QM9 training SMILES for the novelty metric, or ``None`` (with a note) without qm9pack."""
    import importlib.util

    if importlib.util.find_spec("qm9pack") is None:
        print("  (novelty needs QM9's training molecules: pip install 'ponita[qm9]')")
        return None
    from ponita.datasets import edm_training_smiles

    return edm_training_smiles()


def _evaluate_molecules(args: argparse.Namespace) -> int:
    from ponita.datasets import molecule_metrics, read_molecules

    if args.json is not None and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {args.json} must be a file in an existing folder.")
    require_rdkit("EDM's validity metric")
    molecules = read_molecules(args.file)
    metrics = {"file": args.file, **molecule_metrics(molecules, _training_smiles() if args.novelty else None)}
    print(f"{metrics['num_molecules']} molecules in {args.file} (EDM's metrics; QM9 itself: 99.0 / 95.2 / 97.7 %)")
    for name in ("atom_stability", "molecule_stability", "validity", "uniqueness", "valid_and_unique", "novelty"):
        if name in metrics:
            print(f"  {name.replace('_', ' '):20s} {100 * metrics[name]:6.2f} %")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
        print(f"Metrics written to {args.json}")
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


def _demo(args: argparse.Namespace) -> int:
    import ase

    from ponita.datasets import load_rmd17
    from ponita.models import PonitaCalculator, load_potential

    from ._molecular_dynamics import run_md
    from ._run import train

    config = load_config(
        "md17", "quick", overrides=[f"output={args.output}", "molecule=ethanol", "split=1", *args.overrides]
    )
    _check_output(config.output)
    print(f"Demo: training the 'quick' preset on the bundled rMD17 ethanol data ({bundled_data_dir()}) for at "
          f"most {config.max_time_minutes} min, then testing on its 1000 test frames.", flush=True)
    _clear_previous_demo(Path(config.output))
    start = time.time()
    result = train(config, callbacks=[_EpochPrinter()])
    print(f"\nTrained and tested in {time.time() - start:.0f} s.")
    _print_test(task_class("md17"), result.test_metrics)

    frame = load_rmd17("ethanol", "test", split=1)[0]
    atoms = ase.Atoms(numbers=frame.z.numpy(), positions=frame.pos.numpy())
    atoms.calc = PonitaCalculator(load_potential(result.model))
    trajectory = Path(config.output) / "nve.xyz"
    print(f"\nNVE dynamics of ethanol: {DEMO_MD_STEPS} steps of 0.5 fs from 300 K")
    md = run_md(atoms, DEMO_MD_STEPS, 300.0, "nve", 0.5, trajectory, callback=_print_md_progress)
    _print_drift(md, "nve")
    _print_paths(result)
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
        raise UsageError(f"--output {output} holds files that are not those of a ponita run ({', '.join(unknown[:5])}); "
                         "choose an empty or new folder.")
    for name in _RUN_FOLDERS:
        shutil.rmtree(output / name, ignore_errors=True)
    for name in _RUN_FILES:
        (output / name).unlink(missing_ok=True)


def _check_output(output: str) -> None:
    """A run folder must be a folder (or not exist yet)."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output {path} is a file, not a folder.")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise UsageError(f"--output {path} lies under a file.")


class _EpochPrinter(pl.Callback):
    """Prints the run header (machine, precision, compile time), then one line per epoch with the training loss and
    the latest validation metrics (rank 0 only)."""

    def __init__(self) -> None:
        self.start = time.time()
        self._compile_reported = False

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        from ._machine import machine_summary

        if trainer.is_global_zero:
            config = module.task.config
            print(f"  machine:   {machine_summary(config.num_threads)}")
            print(f"  precision: {module.precision_choice}", flush=True)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        compiled = getattr(module, "compiled_loss", None)
        if self._compile_reported or compiled is None or not trainer.is_global_zero:
            return
        self._compile_reported = True
        print(f"  compiled the training step in {compiled.compile_seconds:.0f} s (compile_step=false skips this)",
              flush=True)

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


def _print_test(cls: type[Task], record: dict[str, Any]) -> None:
    print(f"\nTrained on: {record['trained_on']}")
    print(f"Tested on:  {record['tested_on']}")
    print(cls.format_metrics(record))
    for name, path in record.get("artefacts", {}).items():
        print(f"  {name}: {path}")


def _print_md_progress(step: int, potential: float, total: float, temperature: float) -> None:
    print(f"  step {step:6d}  E_pot {potential:14.4f} eV  E_tot {total:14.4f} eV  T {temperature:7.1f} K", flush=True)


def _print_drift(result: Any, ensemble: str) -> None:
    note = "" if ensemble == "nve" else " (Langevin does not conserve energy)"
    print(f"Energy drift{note}: max |E_tot - E_tot(0)| = {result.max_drift * 1000:.3f} meV "
          f"= {result.max_drift_per_atom * 1000:.3f} meV/atom over {result.steps[-1]} steps")


def _print_paths(result: Any) -> None:
    print("Outputs:")
    print(f"  model:           {result.model}")
    print(f"  best checkpoint: {result.best_checkpoint}")
    print(f"  last checkpoint: {result.last_checkpoint}  (continue with --resume)")
    print(f"  logs:            {result.metrics_csv}")
    print(f"  learning curve:  {result.learning_curve}")
    print(f"  test results:    {result.test_json}")
    for name, path in ((result.test_metrics or {}).get("artefacts") or {}).items():
        print(f"  {name + ':':16s} {path}")


if __name__ == "__main__":
    sys.exit(main())
