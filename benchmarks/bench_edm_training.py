"""Training throughput of the qm9-edm generator: seconds per step, molecules per second, days per 1000 epochs.

Builds the model of a ``qm9-edm`` preset and times its training step (EDM's loss at a random diffusion step,
backward, AdamW, gradient clipping) on batches of real QM9 molecules, read from EDM's processed test split
(``edm_qm9_test.npz``; for timing only, so no training data is needed) in the preset's batch size.

Usage::

    python benchmarks/bench_edm_training.py --npz ../shared/data/qm9/edm_qm9_test.npz [--preset paper]
        [--device cuda] [--precisions fp32 bf16] [--steps 20] [--json out.json]
"""

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from ponita.models import EDM, EDMConfig
from ponita.train import load_config
from ponita.train._edm import QM9_ATOMIC_NUMBERS

TRAINING_MOLECULES = 100_000


def read_npz(path: Path) -> list[Data]:
    """The molecules of an EDM-processed QM9 split (``num_atoms``, ``charges`` = Z, ``positions`` in Å)."""
    with np.load(path) as arrays:  # each access of a key decompresses it: read every array once
        num_atoms, charges, positions = arrays["num_atoms"], arrays["charges"], arrays["positions"]
    return [Data(pos=torch.tensor(positions[i, :n], dtype=torch.float32), z=torch.tensor(charges[i, :n], dtype=torch.long))
            for i, n in enumerate(num_atoms.tolist())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, required=True, help="EDM's processed QM9 split (edm_qm9_test.npz)")
    parser.add_argument("--preset", default="paper", choices=("paper", "quick"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps after 3 warm-up steps")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = load_config("qm9-edm", args.preset)
    molecules = read_npz(args.npz)
    sizes = dict(sorted(Counter(int(m.z.shape[0]) for m in molecules).items()))
    rows = []
    for precision in args.precisions:
        torch.manual_seed(0)
        model = EDM(EDMConfig(QM9_ATOMIC_NUMBERS, sizes, network=dict(config.model))).to(args.device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        generator = torch.Generator().manual_seed(0)
        batches = [Batch.from_data_list([molecules[int(i)] for i in torch.randint(len(molecules), (config.batch_size,),
                                                                                 generator=generator)]).to(args.device)
                   for _ in range(args.steps + 3)]
        autocast = torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=precision == "bf16")

        def step(batch: Batch) -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = model.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip or float("inf"))
            optimizer.step()

        for batch in batches[:3]:
            step(batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for batch in batches[3:]:
            step(batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.steps
        row = dict(preset=args.preset, precision=precision, device=args.device, batch_size=config.batch_size,
                   step_s=seconds, molecules_per_s=config.batch_size / seconds,
                   days_per_1000_epochs=1000 * TRAINING_MOLECULES / config.batch_size * seconds / 86400)
        if args.device.startswith("cuda"):
            row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        rows.append(row)
        print(f"{args.preset} {precision}: {seconds * 1e3:.0f} ms per step of {config.batch_size}, "
              f"{row['molecules_per_s']:.0f} molecules/s, {row['days_per_1000_epochs']:.2f} days per 1000 epochs"
              + (f", peak {row['peak_memory_gb']:.1f} GB" if "peak_memory_gb" in row else ""), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
