"""Training throughput of the qm9-edm generator: seconds per step, molecules per second, days per 1000 epochs.

Builds the model of a ``qm9-edm`` preset and times its training step (EDM's loss at a random diffusion step,
backward, AdamW, gradient clipping) on batches of real QM9 molecules, read from EDM's processed test split
(``edm_qm9_test.npz``; for timing only, so no training data is needed) in the preset's batch size.
``--modes eager compiled`` also times the network compiled as ``compile_step`` does for this task
(``torch.compile``, dynamic shapes): both models start from the same weights, and their steps alternate in
``--blocks`` blocks so that the machine's load affects both alike; the first compiled step (the compilation)
is reported apart.

Usage::

    python benchmarks/bench_edm_training.py --npz ../shared/data/qm9/edm_qm9_test.npz [--preset paper]
        [--device cuda] [--precisions fp32 bf16] [--modes eager compiled] [--steps 20] [--blocks 2]
        [--reuse-freed-memory] [--matmul-share] [--json out.json]

``--reuse-freed-memory`` tunes glibc's ``malloc`` as the ``ponita`` command does
(:func:`ponita.train.reuse_freed_memory`); without it, the C library's defaults. Each row reports the
page faults per step. ``--matmul-share`` profiles one more block of steps per mode (``torch.profiler``) and
reports the share of the CPU time spent in matrix products (``mm``, ``addmm``, ``bmm``) and their GFLOP/s.
"""

import argparse
import json
import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from ponita.models import EDM, EDMConfig, build_config
from ponita.train import load_config, reuse_freed_memory
from ponita.train._edm import QM9_ATOMIC_NUMBERS

TRAINING_MOLECULES = 100_000


def read_npz(path: Path) -> list[Data]:
    """The molecules of an EDM-processed QM9 split (``num_atoms``, ``charges`` = Z, ``positions`` in Å)."""
    with np.load(path) as arrays:  # each access of a key decompresses it: read every array once
        num_atoms, charges, positions = arrays["num_atoms"], arrays["charges"], arrays["positions"]
    return [Data(pos=torch.tensor(positions[i, :n], dtype=torch.float32), z=torch.tensor(charges[i, :n], dtype=torch.long))
            for i, n in enumerate(num_atoms.tolist())]


def add_test_molecule_arguments(parser: argparse.ArgumentParser, num: int) -> None:
    """The options of the benchmarks that draw test molecules (:func:`sample_batches`): ``--npz``, ``-n`` (default
    ``num``), ``--seed``, ``--batch-size`` and ``--threads``."""
    parser.add_argument("--npz", type=Path, required=True, help="EDM's processed QM9 split (edm_qm9_test.npz)")
    parser.add_argument("-n", "--num", type=int, default=num, help="molecules drawn from the split")
    parser.add_argument("--seed", type=int, default=0, help="seeds the choice of molecules and the noise")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)


def sample_batches(data: list[Data], num: int, seed: int, batch_size: int) -> list[Batch]:
    """``num`` molecules of ``data`` chosen at random (seeded, without repeats), in batches of ``batch_size``.

    Raises:
        ValueError: if ``num`` is not in ``1..len(data)``.
    """
    if not 1 <= num <= len(data):
        raise ValueError(f"-n must lie in 1..{len(data)}, got {num}")
    chosen = np.random.default_rng(seed).choice(len(data), num, replace=False)
    return [Batch.from_data_list([data[i] for i in chosen[start:start + batch_size]])
            for start in range(0, num, batch_size)]


def matmul_share(run: Callable[[], object]) -> tuple[float, float]:
    """Profiles ``run()``: the fraction of the CPU's self time in matrix products and their GFLOP/s."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as profile:
        run()
    events = profile.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    products = [event for event in events if event.key in ("aten::mm", "aten::addmm", "aten::bmm")]
    product_time = sum(event.self_cpu_time_total for event in products)  # µs
    return product_time / total, sum(event.flops for event in products) / max(product_time, 1) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, required=True, help="EDM's processed QM9 split (edm_qm9_test.npz)")
    parser.add_argument("--preset", default="paper", choices=("paper", "quick", "quick-karras"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=("eager", "compiled"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps (per mode) after 3 warm-up steps")
    parser.add_argument("--blocks", type=int, default=2, help="alternating timed blocks per mode")
    parser.add_argument("--reuse-freed-memory", action="store_true",
                        help="tune glibc's malloc as the ponita command does (ponita.train.reuse_freed_memory)")
    parser.add_argument("--matmul-share", action="store_true",
                        help="profile a block of steps per mode: the share of time in matrix products, their GFLOP/s")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.reuse_freed_memory and not reuse_freed_memory():
        parser.error("--reuse-freed-memory needs glibc's malloc (Linux)")
    config = load_config("qm9-edm", args.preset)
    molecules = read_npz(args.npz)
    sizes = dict(sorted(Counter(int(m.z.shape[0]) for m in molecules).items()))
    rows = []
    for precision in args.precisions:
        generator = torch.Generator().manual_seed(0)
        batches = [Batch.from_data_list([molecules[int(i)] for i in torch.randint(len(molecules), (config.batch_size,),
                                                                                 generator=generator)]).to(args.device)
                   for _ in range(args.steps + 3)]
        autocast = torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=precision == "bf16")
        runs, compile_seconds = {}, None
        for mode in args.modes:
            torch.manual_seed(0)
            model = EDM(build_config(EDMConfig, config.model, atomic_numbers=QM9_ATOMIC_NUMBERS, size_counts=sizes))
            model = model.to(args.device).train()
            if mode == "compiled":
                model.network.forward = torch.compile(model.network.forward, dynamic=True)
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
            runs[mode] = (model, optimizer)

        def step(mode: str, batch: Batch) -> None:
            model, optimizer = runs[mode]
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = model.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip or float("inf"))
            optimizer.step()

        for mode in args.modes:
            start = time.perf_counter()
            step(mode, batches[0])
            if mode == "compiled":
                compile_seconds = time.perf_counter() - start
            for batch in batches[1:3]:
                step(mode, batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        seconds, faults = dict.fromkeys(args.modes, 0.0), dict.fromkeys(args.modes, 0)
        timed = batches[3:]
        for block in range(args.blocks):
            chosen = timed[block * len(timed) // args.blocks:(block + 1) * len(timed) // args.blocks]
            for mode in args.modes:
                start, start_faults = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                for batch in chosen:
                    step(mode, batch)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds[mode] += time.perf_counter() - start
                faults[mode] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start_faults
        shares = {mode: matmul_share(lambda: [step(mode, batch) for batch in chosen]) for mode in args.modes
                  if args.matmul_share}
        for mode in args.modes:
            per_step = seconds[mode] / len(timed)
            row = dict(preset=args.preset, precision=precision, mode=mode, device=args.device,
                       batch_size=config.batch_size, step_s=per_step, molecules_per_s=config.batch_size / per_step,
                       days_per_1000_epochs=1000 * TRAINING_MOLECULES / config.batch_size * per_step / 86400,
                       page_faults_per_step=faults[mode] / len(timed), malloc_tuned=args.reuse_freed_memory)
            if mode == "compiled":
                row["compile_s"] = compile_seconds
            if mode in shares:
                row["matmul_share"], row["matmul_gflops"] = shares[mode]
            if args.device.startswith("cuda"):
                row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            rows.append(row)
            print(f"{args.preset} {precision} {mode}: {per_step * 1e3:.0f} ms per step of {config.batch_size}, "
                  f"{row['molecules_per_s']:.0f} molecules/s, {row['days_per_1000_epochs']:.2f} days per 1000 epochs, "
                  f"{row['page_faults_per_step']:.0f} page faults per step"
                  + (f" (compiled in {compile_seconds:.0f} s)" if mode == "compiled" else "")
                  + (f"; matrix products {100 * shares[mode][0]:.0f} % of the CPU time at {shares[mode][1]:.0f} GFLOP/s"
                     if mode in shares else ""), flush=True)
        if len(args.modes) == 2:
            print(f"compiled: {seconds['eager'] / seconds['compiled']:.2f}x the steps per second of eager", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
