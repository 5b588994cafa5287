"""Benchmark of the spatial-convolution op alone: backends × shapes × dtypes × derivative orders.

Modes, each timed from the forward on (the minimum over ``--repeats`` runs after one warm-up):

- ``fwd``: ``y = spatial_conv(x, basis, weight)`` with inputs that require grad.
- ``fwd+bwd``: then ``(y · r).sum().backward()`` into ``x``, ``basis`` and ``weight``.
- ``fwd+bwd+dbwd``: force-training pattern: ``L1 = (y · r).sum()``; ``(gx, gbasis) =
  grad(L1, (x, basis), create_graph=True)``; ``(L1 + (gx · s).sum() + (gbasis · t).sum()).backward()``.

Memory is the peak resident-set growth of a fresh child process while it runs the mode once
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``, minus the resident set once the
inputs exist), and the bytes that autograd saves
for backward beyond the inputs (``saved_tensors_hooks``, forward only).

Shapes: ``a`` rMD17 aspirin (5 × 21 atoms, fully connected with self-loops, O=20, C=128, B=256);
``b`` QM9 generation (96 × 18 atoms fully connected, O=16, C=256, B=256; no forces, so no
``dbwd``); ``c`` 1000 atoms in a box, 5 Å radius graph (O=16, C=128, B=256).

Usage::

    python benchmarks/bench_spatial_conv.py [--shapes a b c] [--dtypes float32 bfloat16]
        [--backends reference cpu] [--repeats 3] [--threads 2] [--json out.json] [--no-memory]
        [--device cpu|cuda]

On ``--device cuda`` the times are taken between ``torch.cuda.synchronize()`` calls and the memory
columns are the peak of ``torch.cuda.max_memory_allocated`` during the mode, beyond the inputs.

Timings on a machine shared with other jobs are unreliable, more so with several threads
(intra-op threads wait on each other); ``--threads 1`` is the least sensitive.
"""

import argparse
import json
import subprocess
import sys
import time

import torch

from ponita.ops import receiver_csr, spatial_conv

MODES = ("fwd", "fwd+bwd", "fwd+bwd+dbwd")


def fully_connected_batch(num_graphs: int, atoms: int) -> torch.Tensor:
    """Edge index of ``num_graphs`` fully connected graphs with self-loops, ``[2, G·n²]``."""
    local = torch.cartesian_prod(torch.arange(atoms), torch.arange(atoms)).t()  # [2, n²]
    offsets = (torch.arange(num_graphs) * atoms).repeat_interleave(atoms * atoms)  # [G·n²]
    return local.repeat(1, num_graphs) + offsets


def radius_graph_box(num_atoms: int, side: float, radius: float) -> torch.Tensor:
    """Edge index of uniform random points in a cube, all pairs closer than ``radius``."""
    generator = torch.Generator().manual_seed(0)
    pos = torch.rand(num_atoms, 3, generator=generator) * side  # [N, 3]
    adjacency = (torch.cdist(pos, pos) < radius) & ~torch.eye(num_atoms, dtype=torch.bool)
    return adjacency.nonzero().t().flip(0)  # [2, E]: row 0 senders, row 1 receivers


SHAPES = {
    # name: (edge index builder, N, O, C, B, modes)
    "a": (lambda: fully_connected_batch(5, 21), 105, 20, 128, 256, MODES),
    "b": (lambda: fully_connected_batch(96, 18), 1728, 16, 256, 256, MODES[:2]),
    "c": (lambda: radius_graph_box(1000, 22.0, 5.0), 1000, 16, 128, 256, MODES),
}


def make_inputs(shape: str, dtype: torch.dtype, device: str = "cpu"):
    build, num_nodes, num_ori, channels, basis_dim, _ = SHAPES[shape]
    graph, _ = receiver_csr(build().to(device), num_nodes)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(num_nodes, num_ori, channels, generator=generator).to(dtype)  # [N, O, C]
    basis = torch.randn(graph.num_edges, num_ori, basis_dim, generator=generator).to(dtype)
    weight = (torch.randn(basis_dim, channels, generator=generator) / basis_dim**0.5).to(dtype)
    x, basis, weight = (tensor.to(device) for tensor in (x, basis, weight))
    for tensor in (x, basis, weight):
        tensor.requires_grad_(True)
    return x, basis, weight, graph


def run_mode(mode: str, backend: str, x, basis, weight, graph) -> None:
    for tensor in (x, basis, weight):
        tensor.grad = None
    y = spatial_conv(x, basis, weight, graph, backend=backend)  # [N, O, C]
    if mode == "fwd":
        return
    loss = (y * 0.5).sum()
    if mode == "fwd+bwd":
        loss.backward()
        return
    grad_x, grad_basis = torch.autograd.grad(loss, (x, basis), create_graph=True)
    (loss + (grad_x * 0.25).sum() + (grad_basis * 0.125).sum()).backward()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_mode(mode, backend, inputs, repeats: int) -> float:
    device = inputs[0].device
    run_mode(mode, backend, *inputs)  # warm-up (and, for Triton, compilation)
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        run_mode(mode, backend, *inputs)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3  # the minimum is the least disturbed by other processes


def saved_bytes(backend: str, x, basis, weight, graph) -> int:
    """Bytes autograd keeps for backward after the forward, beyond the inputs' own storage."""
    inputs = {t.untyped_storage().data_ptr() for t in (x, basis, weight, graph.src, graph.dst)}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        spatial_conv(x, basis, weight, graph, backend=backend)
    return sum(storages.values())


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_peak(shape: str, dtype: str, backend: str, mode: str) -> None:
    """Entry point of the memory child: prints the peak RSS growth of one run in bytes."""
    inputs = make_inputs(shape, getattr(torch, dtype))
    baseline = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset the peak resident set (VmHWM) to the current one
    run_mode(mode, backend, *inputs)
    print(max(0, _status_bytes("VmHWM") - baseline))


def cuda_peak(mode: str, backend: str, inputs) -> int:
    """Peak CUDA memory allocated while running ``mode`` once, beyond what was allocated before."""
    device = inputs[0].device
    torch.cuda.synchronize(device)
    baseline = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run_mode(mode, backend, *inputs)
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - baseline)


def peak_rss(shape: str, dtype: str, backend: str, mode: str) -> int:
    command = [sys.executable, __file__, "--child", shape, dtype, backend, mode, str(torch.get_num_threads())]
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--backends", nargs="+", default=["reference", "cpu"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS children")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(int(args.child[4]))
        child_peak(*args.child[:4])
        return
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    header = f"{'shape':5} {'dtype':8} {'backend':9} {'mode':13} {'ms':>9} {'peak MB':>9} {'saved MB':>9}"
    on_cuda = torch.device(args.device).type == "cuda"
    where = torch.cuda.get_device_name(args.device) if on_cuda else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}")
    print(header)
    for shape in args.shapes:
        for dtype in args.dtypes:
            inputs = make_inputs(shape, getattr(torch, dtype), args.device)
            for backend in args.backends:
                saved = saved_bytes(backend, *inputs) / 2**20
                for mode in SHAPES[shape][5]:
                    ms = time_mode(mode, backend, inputs, args.repeats)
                    if args.no_memory:
                        peak = None
                    elif on_cuda:
                        peak = cuda_peak(mode, backend, inputs) / 2**20
                    else:
                        peak = peak_rss(shape, dtype, backend, mode) / 2**20
                    row = dict(shape=shape, dtype=dtype, backend=backend, device=args.device, mode=mode, ms=ms,
                               peak_mb=peak, saved_mb=saved, num_edges=inputs[3].num_edges)
                    rows.append(row)
                    peak_text = "-" if peak is None else f"{peak:9.0f}"
                    print(f"{shape:5} {dtype:8} {backend:9} {mode:13} {ms:9.1f} {peak_text:>9} {saved:9.1f}",
                          flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
