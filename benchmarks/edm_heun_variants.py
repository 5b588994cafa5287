"""Heun sampler variants on one `karras` generator, paired: every variant draws from the same seed.

Each variant is a JSON object of keyword arguments of :meth:`ponita.models.EDM.sample` (``rho``,
``churn_range``, ``churn_scale``, ``churn``, ``sigma_max``); ``{}`` is the sampler's defaults. Prints EDM's
atom and molecule stability, validity and uniqueness of ``-n`` molecules per variant (sizes from the training
histogram) and the seconds per molecule. With 500 molecules the paired difference of two variants' molecule
stability has a standard error of ≈ 2 points: confirm a winner on more molecules before changing a default.

Usage:
    python benchmarks/edm_heun_variants.py pretrained/qm9_edm_karras.pt -n 500 '{}' '{"rho": 3}' \\
        '{"churn_range": [0.01, 1e9]}' '{"churn_scale": 1.007}'
"""

import argparse
import json
import time

import torch

from ponita.datasets import molecule_metrics
from ponita.models import read_checkpoint
from ponita.ops import flush_denormals
from ponita.train import reuse_freed_memory, sample_molecules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a generator exported by `ponita train qm9-edm` (.pt), objective karras")
    parser.add_argument("variants", nargs="+", help="JSON keyword arguments of EDM.sample, e.g. '{\"rho\": 3}'")
    parser.add_argument("-n", "--num", type=int, default=500)
    parser.add_argument("--steps", type=int, default=None, help="Heun steps (default: the sampler's)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        variants = [json.loads(variant) for variant in args.variants]
    except json.JSONDecodeError as error:
        parser.error(f"a variant is not JSON ({error}); write e.g. '{{\"rho\": 3}}'")
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    model = read_checkpoint(args.checkpoint).build("cpu").eval()
    for variant in variants:
        options = {key: tuple(value) if key == "churn_range" else value for key, value in variant.items()}
        start = time.perf_counter()
        with torch.inference_mode(), flush_denormals():
            molecules = sample_molecules(model, args.num, args.steps, 100, torch.Generator().manual_seed(args.seed),
                                         **options)
        metrics = molecule_metrics(molecules)
        print(f"{json.dumps(variant)}: atom stability {100 * metrics['atom_stability']:.1f} %, molecule stability "
              f"{100 * metrics['molecule_stability']:.1f} %, validity {100 * metrics['validity']:.1f} %, uniqueness "
              f"{100 * metrics['uniqueness']:.1f} %, {(time.perf_counter() - start) / args.num:.2f} s per molecule",
              flush=True)


if __name__ == "__main__":
    main()
