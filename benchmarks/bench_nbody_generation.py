"""Benchmark of the N-body generator: all 14,000 simulations of "nbody_small", against the one-at-a-time loop.

The vectorised generator (:func:`ponita.datasets.generate_nbody`) integrates all simulations of a chunk
at once; the reference (:func:`ponita.datasets.simulate_charged_reference`) integrates one simulation at
a time, as the original script does. Both give bit-identical arrays (tests/datasets/test_nbody.py).

Usage:
    python benchmarks/bench_nbody_generation.py [--reference-sims 20] [--threads 2]
"""

import argparse
import platform
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-sims", type=int, default=20, help="simulations timed with the reference loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (numpy's follow OMP_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from ponita.datasets import NBODY_SPLITS, generate_nbody, simulate_charged_reference
    from ponita.datasets._nbody import draw_initial_states

    charges, loc, vel = draw_initial_states(np.random.RandomState(43), args.reference_sims)
    start = time.perf_counter()
    for index in range(args.reference_sims):
        simulate_charged_reference(charges[index], loc[index], vel[index])
    reference = (time.perf_counter() - start) / args.reference_sims

    start = time.perf_counter()
    splits = generate_nbody()
    vectorised = time.perf_counter() - start
    total = sum(NBODY_SPLITS.values())
    assert sum(len(split) for split in splits.values()) == total
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"reference loop: {reference:.3f} s per simulation → {reference * total / 60:.1f} min for {total}")
    print(f"vectorised:     {vectorised:.1f} s for all {total} ({vectorised / total * 1e3:.2f} ms per simulation), "
          f"{reference * total / vectorised:.0f}× faster")


if __name__ == "__main__":
    main()
