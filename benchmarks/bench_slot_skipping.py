"""What skipping the discarded slots of the fused convolution saves: md17 steps with and without it, side by side.

The fused op's backward computes a gradient only where the running backward will use it
(``ponita.ops._fused_spatial_conv._engine_needs``). Forces, ``autograd.grad(energy, pos)``, then skip the
weight-gradient contraction of every layer, which ``needs_input_grad`` alone would run and autograd
throw away. This script times, on batches of the preset's size from the first 200 training frames, in
fp32 and eager mode on the fused CPU op:

- ``train``: the loss with forces, its backward and the optimiser step (what training repeats);
- ``forces``: energies and forces of the model in eval mode (what eager MD and evaluation repeat),

alternating blocks of ``--steps`` steps with skipping on and off (``needs_input_grad`` only), and reports
the median block of each and their ratio.

Usage:
    python benchmarks/bench_slot_skipping.py --preset quick-large --molecule aspirin \\
        --data-dir ../shared/data/rmd17 [--threads 1] [--steps 20] [--blocks 5] [--json FILE]
"""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch_geometric.data import Batch

from ponita.datasets import load_rmd17
from ponita.ops import _fused_spatial_conv, use_backend
from ponita.train import MD17Task, benchmark_setup, load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick-large")
    parser.add_argument("--molecule", default="aspirin")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks of each mode")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    overrides = [f"molecule={args.molecule}", "precision=32-true"]
    overrides += [f"data_dir={args.data_dir}"] if args.data_dir else []
    config = load_config("md17", args.preset, overrides=overrides)
    task = MD17Task(config)
    frames = load_rmd17(args.molecule, "train", split=1, data_dir=args.data_dir)[:200]
    model, batches, optimizer = benchmark_setup(task, frames)

    def train_step(batch: Batch) -> None:
        model.train()
        loss = task.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def forces(batch: Batch) -> None:
        model.eval()
        model(batch)

    skipping = _fused_spatial_conv._engine_needs

    def needs_input_grad_only(ctx: object, index: int) -> bool:
        return ctx.needs_input_grad[index]

    def timed(work: Callable[[Batch], None], block: int) -> float:
        chosen = [batches[(block * args.steps + i) % len(batches)] for i in range(args.steps)]
        start = time.perf_counter()
        for batch in chosen:
            work(batch)
        return 1000 * (time.perf_counter() - start) / args.steps

    result: dict[str, object] = {
        "machine": platform.processor() or platform.machine(),
        "avx512_bf16": "avx512_bf16" in open("/proc/cpuinfo").read() if platform.system() == "Linux" else None,
        "threads": args.threads, "preset": args.preset, "molecule": args.molecule, "batch_size": config.batch_size,
        **{key: config.model[key] for key in ("hidden_dim", "num_layers", "num_ori")},
    }
    with use_backend("cpu"):  # the fused CPU op, whatever the size (auto fuses only large messages)
        for name, work in (("train", train_step), ("forces", forces)):
            for batch in batches[:3]:  # warm-up, both variants
                work(batch)
            times: dict[str, list[float]] = {"skip": [], "all": []}
            for block in range(args.blocks):
                for mode in ("skip", "all"):
                    _fused_spatial_conv._engine_needs = skipping if mode == "skip" else needs_input_grad_only
                    times[mode].append(timed(work, block))
            _fused_spatial_conv._engine_needs = skipping
            skip, every = statistics.median(times["skip"]), statistics.median(times["all"])
            result[name] = {"skip_ms": round(skip, 2), "all_slots_ms": round(every, 2), "speedup": round(every / skip, 3)}
            print(f"{name:7s} skipping {skip:8.2f} ms   all slots {every:8.2f} ms   {every / skip:.3f}x", flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
