"""The depthwise fibre convolution's two paths, broadcast product and ``bmm``, forward and backward.

Times ``FibreBundleConv._fibre_conv`` (``y[n,p,c] = Σ_o x[n,o,c] κ[o,p,c] / O``) on ``[N, O, C]`` inputs
with the size threshold forced each way; the network picks the broadcast product up to
``_BROADCAST_MAX_ELEMENTS`` elements of ``[N, O, O, C]`` (docs/performance.md).

Usage:
    python benchmarks/bench_fibre_conv.py [--threads 1]
"""

import argparse
import time

import torch

import ponita.nn._fibre_bundle_conv as fibre
from ponita.nn import FibreBundleConv

SHAPES = [(42, 6, 48), (18, 6, 64), (42, 12, 48), (105, 6, 128), (100, 10, 100), (210, 8, 64), (105, 20, 128)]


def seconds(conv: FibreBundleConv, x: torch.Tensor, basis: torch.Tensor, repeats: int) -> float:
    def step() -> None:
        conv._fibre_conv(x, basis).sum().backward()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{'[N, O, C]':>16s} {'N·O·O·C':>10s} {'broadcast µs':>13s} {'bmm µs':>9s}")
    for num_nodes, num_ori, channels in SHAPES:
        conv = FibreBundleConv(channels, 8)
        x = torch.randn(num_nodes, num_ori, channels, requires_grad=True)
        basis = torch.randn(num_ori, num_ori, 8)
        repeats = max(5, int(2e7 // (num_nodes * num_ori * num_ori * channels)))
        times = {}
        for name, threshold in (("broadcast", 2**62), ("bmm", 0)):
            fibre._BROADCAST_MAX_ELEMENTS = threshold
            times[name] = 1e6 * seconds(conv, x, basis, repeats)
        size = num_nodes * num_ori * num_ori * channels
        print(f"{str([num_nodes, num_ori, channels]):>16s} {size:>10d} {times['broadcast']:>13.0f} {times['bmm']:>9.0f}")


if __name__ == "__main__":
    main()
