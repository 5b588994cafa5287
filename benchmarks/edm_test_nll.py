"""EDM's test NLL (the variational bound, nats per molecule) of a generator on EDM's processed QM9 test split.

Reads ``edm_qm9_test.npz`` directly (13,083 molecules; the same molecules as the ``qm9-edm`` test split), draws
the bound once per molecule (:meth:`ponita.models.EDM.nll`, seeded) and prints the mean with its standard error.

Usage::

    python benchmarks/edm_test_nll.py CKPT --npz ../shared/data/qm9/edm_qm9_test.npz [--device cuda]
        [--num 13083] [--batch-size 500] [--seed 0] [--json out.json]
"""

import argparse
import json
import time
from pathlib import Path

import torch
from bench_edm_training import read_npz
from torch_geometric.data import Batch

from ponita.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--npz", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num", type=int, help="first molecules only (default: all)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = load_model(args.checkpoint, map_location=args.device).eval()
    molecules = read_npz(args.npz)[: args.num]
    generator = torch.Generator(args.device).manual_seed(args.seed)
    start, values = time.perf_counter(), []
    for first in range(0, len(molecules), args.batch_size):
        batch = Batch.from_data_list(molecules[first:first + args.batch_size]).to(args.device)
        values.append(model.nll(batch, generator).cpu())
    nll = torch.cat(values)
    mean, error = float(nll.mean()), float(nll.std() / len(nll) ** 0.5)
    print(f"{args.checkpoint}: test NLL {mean:.1f} ± {error:.1f} nats per molecule over {len(nll)} molecules "
          f"(one draw each, seed {args.seed}; {time.perf_counter() - start:.0f} s on {args.device})")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": args.checkpoint, "nll": mean, "standard_error": error,
                                         "molecules": len(nll), "seed": args.seed}, indent=1))


if __name__ == "__main__":
    main()
