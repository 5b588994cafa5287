"""Side by side with the reference PONITA code: one aspirin training step with forces, both in one process.

The reference implementation (github.com/ebekkers/ponita, the paper's code) and ours are built with the
paper's rMD17 configuration — 20 directions, 128 channels, basis 256, degree 3, 5 layers, widening 4,
multiple readouts, batch 5, fully connected with self-loops — and step on the same batch of five rMD17
aspirin frames: forward, forces by ``autograd.grad(create_graph=True)``, the reference's loss
(energy MSE / λ_F + force MSE, λ_F = 500), backward, an Adam step. Blocks of steps alternate between
the two so that a change in the machine's load hits both; the table reports the median block, and the
minor page faults per step (fresh memory pages the kernel had to map and zero).

The reference package is also called ``ponita``; it is copied into a temporary directory as
``ponita_reference`` (its ``ponita.`` imports rewritten), so both import in one process. It needs
``torch_scatter`` for one import it does not use in the fibre-bundle model; where no wheel exists a
plain-torch stand-in of ``scatter_mean`` is put in its place (stated in the output). Its transforms
define ``__call__``, which newer torch_geometric no longer accepts alone; ``forward`` is set to it.

Ours runs eagerly with the ``auto`` backend (``--ours-compiled`` also times ``compile_step``'s
traced and compiled loss-and-gradients, :class:`ponita.train.CompiledLoss`).

``--gemm-floor`` also bounds what any code of the same function can reach on this machine: it lists each
step's matrix products (``mm``, ``addmm``, ``bmm``: shapes and FLOPs from ``torch.profiler``), times every
distinct shape alone (contiguous operands, a reused output, median of repeats) and sums them per step. A
step cannot take less than its products; the reference's step divided by that sum is the largest speed-up
left to any implementation that keeps the products, whatever it does with the rest.

Usage:
    git clone https://github.com/ebekkers/ponita /tmp/ponita-reference
    python benchmarks/bench_reference_ponita.py --reference-dir /tmp/ponita-reference \\
        --data-dir ../shared/data/rmd17 --threads 1 --blocks 5 --steps 3 [--ours-compiled] [--reuse-freed-memory] \\
        [--json FILE] [--gemm-floor] [--flush-denormals]
"""

import argparse
import contextlib
import functools
import io
import json
import logging
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import types
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

HIDDEN, BASIS, LAYERS, NUM_ORI, DEGREE, WIDENING, BATCH, LAMBDA_F = 128, 256, 5, 20, 3, 4, 5, 500.0


def import_reference(reference_dir: Path) -> tuple[types.ModuleType, bool]:
    """The reference package imported as ``ponita_reference``; whether a scatter stand-in was needed."""
    source = reference_dir / "ponita"
    if not (source / "models" / "ponita.py").is_file():
        sys.exit(f"error: {reference_dir} is not a checkout of github.com/ebekkers/ponita (no ponita/models/ponita.py).")
    target_root = Path(tempfile.mkdtemp(prefix="ponita_reference_"))
    target = target_root / "ponita_reference"
    shutil.copytree(source, target)
    for path in target.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\b(from|import) ponita\b", r"\1 ponita_reference", text))
    stand_in = False
    try:
        import torch_scatter  # noqa: F401
    except ImportError:
        stand_in = True
        module = types.ModuleType("torch_scatter")

        def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None):
            size = int(index.max()) + 1 if dim_size is None else dim_size
            shape = list(src.shape)
            shape[dim] = size
            index = index.view(*([1] * dim), -1, *([1] * (src.dim() - dim - 1))).expand_as(src)
            total = src.new_zeros(shape).scatter_add_(dim, index, src)
            count = src.new_zeros(shape).scatter_add_(dim, index, torch.ones_like(src))
            return total / count.clamp(min=1)

        module.scatter_mean = scatter_mean
        sys.modules["torch_scatter"] = module
    sys.path.insert(0, str(target_root))
    import ponita_reference.models.ponita as reference
    import ponita_reference.transforms as transforms

    # The reference's transforms define __call__; torch_geometric ≥ 2.4 makes BaseTransform.forward abstract.
    for value in vars(transforms).values():
        if isinstance(value, type) and getattr(value, "__abstractmethods__", None) == frozenset({"forward"}):
            value.forward = value.__call__
            value.__abstractmethods__ = frozenset()
    return reference, stand_in


def aspirin_batch(data_dir: Path | None) -> Batch:
    """Five aspirin frames (train_01 frames 0–4), one-hot atom types, fully connected with self-loops."""
    if data_dir is not None:
        frames = np.load(data_dir / "rmd17_aspirin_train_01.npz")
        charges = torch.as_tensor(frames["nuclear_charges"]).long()
        coords = torch.as_tensor(frames["coords"][:BATCH], dtype=torch.float32)
        energies = torch.as_tensor(frames["energies"][:BATCH], dtype=torch.float32)
        forces = torch.as_tensor(frames["forces"][:BATCH], dtype=torch.float32)
    else:  # aspirin's sizes and composition with random coordinates
        generator = torch.Generator().manual_seed(0)
        charges = torch.tensor([6] * 9 + [8] * 4 + [1] * 8)
        coords = torch.rand(BATCH, 21, 3, generator=generator) * 4.0
        energies, forces = torch.zeros(BATCH), torch.randn(BATCH, 21, 3, generator=generator)
    types_ = torch.unique(charges, return_inverse=True)[1]
    one_hot = torch.nn.functional.one_hot(types_, 9).float()
    n = charges.numel()
    edges = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")).reshape(2, -1)
    graphs = [Data(pos=coords[i], x=one_hot, edge_index=edges, energy=energies[i:i + 1], force=forces[i])
              for i in range(BATCH)]
    return Batch.from_data_list(graphs)


def reference_model(reference: types.ModuleType, batch: Batch) -> torch.nn.Module:
    with contextlib.redirect_stderr(io.StringIO()):  # the progress bar of its repulsion grid
        model = reference.Ponita(9, HIDDEN, 1, LAYERS, output_dim_vec=0, radius=None, num_ori=NUM_ORI,
                                 basis_dim=BASIS, degree=DEGREE, widening_factor=WIDENING, layer_scale=None,
                                 task_level="graph", multiple_readouts=True, lift_graph=True)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # materialise the LazyLinear layers
        model(batch.clone())
    return model


def our_model(batch: Batch) -> torch.nn.Module:
    from ponita import Ponita

    return Ponita(input_dim=9, hidden_dim=HIDDEN, output_dim=1, num_layers=LAYERS, num_ori=NUM_ORI,
                  basis_dim=BASIS, degree=DEGREE, widening_factor=WIDENING, layer_scale=None,
                  multiple_readouts=True, radius=None, task_level="graph")


def loss_fn(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The reference's md17 loss: forces by autograd with create_graph, energy MSE / λ_F + force MSE."""
    inputs = batch.clone()
    pos = inputs.pos.clone().requires_grad_(True)
    inputs.pos = pos
    energy = model(inputs)[0].squeeze(-1)
    force = -torch.autograd.grad(energy, pos, torch.ones_like(energy), create_graph=True)[0]
    energy_loss = ((energy - batch.energy) ** 2).mean()
    force_loss = ((force - batch.force) ** 2).sum(-1).mean() / 3.0
    return energy_loss / LAMBDA_F + force_loss


def training_step(model: torch.nn.Module, batch: Batch, loss=loss_fn):
    """One Adam step on ``loss(model, batch)``; ``loss`` may be :class:`ponita.train.CompiledLoss` of
    :func:`loss_fn` (the loss and weight gradients traced once with make_fx and compiled: ``compile_step``)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step() -> None:
        optimizer.zero_grad()
        loss(model, batch).backward()
        optimizer.step()

    return step


def matrix_products(step) -> Counter:
    """``(op, input shapes) → calls`` of the matrix products in one call of ``step`` (after a warm-up)."""
    from torch.profiler import profile

    with profile(record_shapes=True) as prof:
        step()
    operands = {"aten::mm": 2, "aten::addmm": 3, "aten::bmm": 2}  # inductor's calls also list their out=
    return Counter((event.name, tuple(tuple(shape) for shape in event.input_shapes[:operands[event.name]]))
                   for event in prof.events() if event.name in operands)


def _product_flops(op: str, shapes: tuple) -> int:
    (m, k), n = shapes[-2][-2:], shapes[-1][-1]
    return 2 * m * k * n * (shapes[0][0] if op == "aten::bmm" else 1)


def time_product(op: str, shapes: tuple, repeats: int = 5) -> float:
    """Median seconds of one product of these shapes alone, into a reused output."""
    operands = [torch.randn(shape) for shape in shapes]
    rows, cols = shapes[-2][-2], shapes[-1][-1]
    out = torch.empty(shapes[0][0], rows, cols) if op == "aten::bmm" else torch.empty(rows, cols)
    call = functools.partial({"aten::mm": torch.mm, "aten::addmm": torch.addmm, "aten::bmm": torch.bmm}[op],
                             *operands, out=out)
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def gemm_floor(steps: dict) -> dict[str, dict[str, float]]:
    """Per code: the step's matrix-product GFLOP and the seconds those products take alone."""
    floors = {}
    for name, step in steps.items():
        products = matrix_products(step)
        flops = sum(_product_flops(op, shapes) * calls for (op, shapes), calls in products.items())
        seconds = sum(time_product(op, shapes) * calls for (op, shapes), calls in products.items())
        floors[name] = {"products": sum(products.values()), "gflop": flops / 1e9, "seconds": seconds}
    return floors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, required=True, help="a checkout of github.com/ebekkers/ponita")
    parser.add_argument("--data-dir", type=Path, default=None, help="rMD17 directory (default: random coordinates)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per block")
    parser.add_argument("--ours-compiled", action="store_true", help="also time our compiled training step")
    parser.add_argument("--reuse-freed-memory", action="store_true",
                        help="tune glibc's malloc as the ponita command does (ponita.train.reuse_freed_memory); "
                             "it speeds up both codes alike")
    parser.add_argument("--flush-denormals", action="store_true",
                        help="flush denormal floats to zero in this thread, as `ponita train` does "
                             "(ponita.ops.flush_denormals); for both codes alike")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--gemm-floor", action="store_true",
                        help="also time each step's matrix products alone: the least time any code of the "
                             "same products can take here")
    args = parser.parse_args()
    if args.reuse_freed_memory:
        from ponita.train import reuse_freed_memory

        reuse_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from ponita.ops import flush_denormals

    with flush_denormals(args.flush_denormals):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Times both codes' steps in alternating blocks and prints the table (and the floor, if asked)."""
    reference, stand_in = import_reference(args.reference_dir)
    logging.getLogger().setLevel(logging.ERROR)
    batch = aspirin_batch(args.data_dir)
    steps = {"reference PONITA code": training_step(reference_model(reference, batch), batch),
             "ours (eager)": training_step(our_model(batch), batch)}
    if args.ours_compiled:
        from ponita.train import CompiledLoss

        steps["ours (compile_step)"] = training_step(our_model(batch), batch, CompiledLoss(loss_fn))
    with contextlib.redirect_stdout(io.StringIO()):  # warm-up: calibration ("Callibrating..."), compilation
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    faults: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.blocks):
        for name, step in steps.items():
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / args.steps)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["reference PONITA code"]
    from ponita.train._machine import machine_summary

    machine = machine_summary(args.threads)
    print(f"machine: {machine}; torch {torch.__version__}, fp32"
          + ("; malloc tuned (reuse_freed_memory)" if args.reuse_freed_memory else "")
          + ("; denormals flushed" if args.flush_denormals else ""))
    if stand_in:
        print("torch_scatter: not installed; a plain-torch scatter_mean stands in (unused by the fibre-bundle model)")
    print(f"aspirin, batch {BATCH} × 21 atoms, fully connected + self-loops, O={NUM_ORI}, C={HIDDEN}, B={BASIS}, "
          f"{LAYERS} layers; median of {args.blocks} alternating blocks of {args.steps} steps")
    print(f"{'':28s} {'s / step':>9s} {'speed-up':>9s} {'page faults / step':>19s}")
    for name, seconds in medians.items():
        print(f"{name:28s} {seconds:9.3f} {base / seconds:8.2f}× {statistics.median(faults[name]):19,.0f}")
    with contextlib.redirect_stdout(io.StringIO()):
        floors = gemm_floor(steps) if args.gemm_floor else {}
    if floors:
        print("matrix products of one step, each shape timed alone (contiguous operands, reused output):")
        print(f"{'':28s} {'products':>9s} {'GFLOP':>7s} {'s alone':>8s} {'GFLOP/s':>8s} {'share of step':>14s}")
        for name, floor in floors.items():
            print(f"{name:28s} {floor['products']:9d} {floor['gflop']:7.1f} {floor['seconds']:8.3f} "
                  f"{floor['gflop'] / floor['seconds']:8.1f} {floor['seconds'] / medians[name]:13.0%}")
        least = min(floor["seconds"] for floor in floors.values())
        print(f"bound: the reference's step over the least product time: {base / least:.2f}× "
              "(the most any code with these products can gain here)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "threads": args.threads, "reuse_freed_memory": args.reuse_freed_memory,
                                         "flush_denormals": args.flush_denormals, "date": time.strftime("%Y-%m-%d"), "seconds": times, "page_faults": faults,
                                         "median_seconds": medians, "gemm_floor": floors}, indent=2))


if __name__ == "__main__":
    main()
