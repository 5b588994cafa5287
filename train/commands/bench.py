"""``ponita bench``: time a potential's inference and MD (``md``), or fp32 against bf16 here (``precision``)."""

import argparse
import json
import time
from pathlib import Path

from ponita.datasets import RMD17_MOLECULES

from .._config import load_config
from ._common import UsageError, add_structure_arguments, md_structure


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds ``bench md`` and ``bench precision``."""
    bench = commands.add_parser("bench", help="benchmarks: a potential's inference and MD speed, this CPU's precisions")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    bench_md = benchmarks.add_parser(
        "md", help="inference ms/frame and MD steps/s of a potential, eager and compiled",
        description="Times a potential where users feel it: energy and forces of one structure (median ms per "
        "frame) and NVE molecular dynamics with ASE (steps/s), eagerly and compiled (`ponita md --compile`).",
    )
    add_structure_arguments(bench_md)
    bench_md.add_argument("--steps", type=int, default=300, help="MD steps timed (default 300)")
    bench_md.add_argument("--frames", type=int, default=50, help="single evaluations timed (default 50)")
    bench_md.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    bench_md.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"])
    bench_md.add_argument("--denormals", choices=("flush", "keep", "both"), default="flush",
                          help="flush denormal floats to zero as `ponita md` does (default), keep them, or time both")
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


def _bench_md(args: argparse.Namespace) -> int:
    import torch

    from ponita.models import load_potential

    from ..deploy._molecular_dynamics import benchmark_md

    if args.steps < 1 or args.frames < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError(f"--steps, --frames and --threads must be ≥ 1; got {args.steps}, {args.frames}, "
                         f"{args.threads}.")
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise UsageError(f"--json {args.json} must be a file in an existing folder.")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_potential(args.checkpoint)
    atoms = md_structure(args, model)
    print(f"{len(atoms)} atoms, {torch.get_num_threads()} thread(s), {args.steps} NVE steps of 0.5 fs")
    print(f"{'mode':9s} {'denormals':9s} {'first call s':>12s} {'inference ms':>13s} {'MD steps/s':>11s} "
          f"{'drift eV':>9s}")
    rows = []
    denormal_modes = ("flush", "keep") if args.denormals == "both" else (args.denormals,)
    for mode in args.modes:
        for denormals in denormal_modes:
            row = benchmark_md(model, atoms, args.steps, args.frames, compile=mode == "compiled",
                               flush_denormals=denormals == "flush")
            rows.append({"mode": mode, "denormals": denormals, **row})
            print(f"{mode:9s} {denormals:9s} {row['first_call_s']:12.1f} {row['inference_ms']:13.2f} "
                  f"{row['md_steps_per_s']:11.0f} {row['md_drift_eV']:9.2e}", flush=True)
    if args.json:
        record = {"checkpoint": str(args.checkpoint), "structure": args.structure or f"rMD17 {args.from_data} test "
                  f"frame {args.frame}", "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
                  "results": rows}
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"Results written to {args.json}")
    return 0


def _bench_precision(args: argparse.Namespace) -> int:
    import torch

    from ponita.datasets import load_rmd17

    from .._machine import choose_precision, cpu_bf16_speedup, machine_summary
    from ..deploy._benchmarks import benchmark_precisions

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
