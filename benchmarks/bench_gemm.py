"""GFLOP/s of the matrix products that dominate a PONITA training step, against a square product.

A PONITA layer's kernel projections are thin products: ``[E·O, B] × [B, C]`` forward, ``[E·O, C] × [C, B]``
for the input gradient, and ``[B, E·O] × [E·O, C]`` (a long inner dimension) for the weight gradient, with
E·O in the hundreds of thousands and B, C in the tens. This prints how fast the CPU's BLAS runs them on
``--threads`` threads, each with a fresh output (as autograd allocates one) and into a reused output, so
that the cost of faulting in fresh pages is visible; ``--reuse-freed-memory`` calls
:func:`ponita.train.reuse_freed_memory` first (what the ``ponita`` command does). The minimum of
``--repeats`` runs; one line per product, and oneDNN's inference-only linear for comparison where torch has it.

Usage:
    python benchmarks/bench_gemm.py [--rows 170000] [--width 64] [--threads 1] [--reuse-freed-memory]
"""

import argparse
import time
from collections.abc import Callable

import torch

from ponita.train import reuse_freed_memory


def seconds(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=170_000, help="E·O: edges times orientations (QM9 generator, batch 64)")
    parser.add_argument("--width", type=int, default=64, help="B = C: basis and channel width")
    parser.add_argument("--square", type=int, default=2000, help="the square product's size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reuse-freed-memory", action="store_true")
    args = parser.parse_args()
    if args.rows < 1 or args.width < 1 or args.square < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--rows, --width, --square, --repeats and --threads must be positive")
    torch.set_num_threads(args.threads)
    if args.reuse_freed_memory and not reuse_freed_memory():
        print("reuse_freed_memory: not available here (no glibc); measuring with the default allocator")
    rows, width = args.rows, args.width
    x, gradient = torch.randn(rows, width), torch.randn(rows, width)
    weight, out = torch.randn(width, width), torch.empty(rows, width)
    square_a, square_b = torch.randn(args.square, args.square), torch.randn(args.square, args.square)
    thin = 2.0 * rows * width * width
    products = [
        (f"square {args.square}³", lambda: square_a @ square_b, 2.0 * args.square**3),
        (f"[{rows}, {width}] × [{width}, {width}], fresh output", lambda: x @ weight, thin),
        (f"[{rows}, {width}] × [{width}, {width}], into a reused output", lambda: torch.mm(x, weight, out=out), thin),
        (f"[{rows}, {width}] × [{width}, {width}]ᵀ (input gradient), fresh output", lambda: gradient @ weight.t(), thin),
        (f"[{width}, {rows}] × [{rows}, {width}] (weight gradient)", lambda: x.t() @ gradient, thin),
    ]
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):  # oneDNN's inference linear (no autograd), for comparison
        weight_t = weight.t().contiguous()
        products.append((f"[{rows}, {width}] × [{width}, {width}], oneDNN linear (inference only)",
                         lambda: torch.ops.mkldnn._linear_pointwise(x, weight_t, None, "none", [], ""), thin))
    print(f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"allocator: {'reuse_freed_memory' if args.reuse_freed_memory else 'default'}")
    for name, run, flops in products:
        elapsed = seconds(run, args.repeats)
        print(f"  {name:60s} {1e3 * elapsed:8.2f} ms  {flops / elapsed / 1e9:6.1f} GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
