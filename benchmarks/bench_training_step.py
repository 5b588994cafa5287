"""Eager against compiled (``compile_step``) md17 training steps: milliseconds per step and compile time.

Builds the potential of a preset for an rMD17 molecule, calibrates it, and times the step that training
repeats: the loss (energies and forces) and its gradients with respect to the weights, then the
preset's optimiser step (or ``--optimizer``'s), on batches of the preset's size drawn from the first 200
training frames, in the preset's precision. Eager and compiled steps alternate in blocks of ``--steps``
steps (the machine's load changes both alike); the median block is reported. The compile time is that
of a cold Inductor cache only if ``TORCHINDUCTOR_CACHE_DIR`` points to an empty folder.

Usage:
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python benchmarks/bench_training_step.py --preset quick-large \\
        --molecule aspirin --data-dir ../shared/data/rmd17 [--threads 1] [--steps 50] [--blocks 5] \\
        [--optimizer muon] [--json FILE]
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch

from ponita.datasets import load_rmd17
from ponita.train import CompiledLoss, MD17Task, benchmark_setup, load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick-large")
    parser.add_argument("--molecule", default="aspirin")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks of each mode")
    parser.add_argument("--optimizer", default=None, help="instead of the preset's (adam, adamw, muon)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    overrides = [f"molecule={args.molecule}"] + ([f"data_dir={args.data_dir}"] if args.data_dir else [])
    overrides += [f"optimizer={args.optimizer}"] if args.optimizer else []
    config = load_config("md17", args.preset, overrides=overrides)
    task = MD17Task(config)
    frames = load_rmd17(args.molecule, "train", split=1, data_dir=args.data_dir)[:200]
    model, batches, optimizer = benchmark_setup(task, frames)
    autocast = config.precision == "bf16-mixed"
    compiled_loss = CompiledLoss(task.loss)

    def step(batch: Batch, compiled: bool) -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            loss = compiled_loss(model, task.static_batch(model, batch)) if compiled else task.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step(batches[0], compiled=True)  # traces and compiles
    compile_seconds = time.perf_counter() - start
    for batch in batches[1:4]:
        step(batch, compiled=False)
        step(batch, compiled=True)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for block in range(args.blocks):
        for mode in ("eager", "compiled"):
            chosen = [batches[(block * args.steps + i) % len(batches)] for i in range(args.steps)]
            start = time.perf_counter()
            for batch in chosen:
                step(batch, compiled=mode == "compiled")
            times[mode].append(1000 * (time.perf_counter() - start) / args.steps)
    eager, compiled = statistics.median(times["eager"]), statistics.median(times["compiled"])
    result = {
        "preset": args.preset, "molecule": args.molecule, "batch_size": config.batch_size, "precision": config.precision,
        "optimizer": config.optimizer,
        "threads": args.threads, "model": config.model, "compile_seconds": round(compile_seconds, 1),
        "eager_ms_per_step": round(eager, 2), "compiled_ms_per_step": round(compiled, 2),
        "speed_up": round(eager / compiled, 2), "blocks_ms": times,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"{args.preset} / {args.molecule} (batch {config.batch_size}, {config.precision}, {config.optimizer}, "
          f"{args.threads} thread(s)): "
          f"eager {eager:.1f} ms/step, compiled {compiled:.1f} ms/step ({eager / compiled:.2f}x), "
          f"first compiled step {compile_seconds:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
