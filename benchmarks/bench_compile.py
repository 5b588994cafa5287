"""Compiled against eager inference of the full network, without and with forces.

Configuration (a) of ``bench_model.py`` by default (rMD17 aspirin size: 5 × 21 atoms, fully connected
with self-loops, O=20, C=128, B=256, 5 layers, degree 3), fp32, edges given in the batch:

- *forward*: ``model(batch)`` eager against ``torch.compile(model, fullgraph=True)`` (Inductor);
- *forward + forces*: energy and ``-dE/dx`` by autograd, eager against
  :func:`ponita.models.compile_energy_and_forces` (forward and gradient traced into one graph with
  ``make_fx``, then Inductor).

Times are the median of ``--repeats`` calls after warm-up; compile times are the first call's.

Usage::

    python benchmarks/bench_compile.py [--config aspirin] [--repeats 20] [--threads 2] [--json out.json]
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from bench_model import CONFIGS
from torch_geometric.data import Batch, Data

from ponita import Ponita
from ponita.models import compile_energy_and_forces


def _batch(cfg: dict) -> Batch:
    generator = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(cfg["graphs"]):
        n = cfg["atoms"]
        receivers, senders = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        graphs.append(Data(pos=torch.rand(n, 3, generator=generator) * 4.0, x=torch.randn(n, 5, generator=generator),
                           edge_index=torch.stack([senders.flatten(), receivers.flatten()])))
    return Batch.from_data_list(graphs)


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _first_call_seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="aspirin", choices=[name for name, c in CONFIGS.items() if c["forces"]])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    model = Ponita(input_dim=5, hidden_dim=cfg["hidden_dim"], basis_dim=cfg["basis_dim"], num_layers=cfg["num_layers"],
                   output_dim=1, num_ori=cfg["num_ori"], radius=cfg["radius"], task_level="graph", degree=3,
                   multiple_readouts=True).eval()
    batch = _batch(cfg)

    def energy(pos: torch.Tensor) -> torch.Tensor:
        inputs = batch.clone()
        inputs.pos = pos
        return model(inputs)[0][:, 0]  # [G]

    def eager_forces() -> tuple:
        with torch.enable_grad():
            pos = batch.pos.clone().requires_grad_(True)
            energies = energy(pos)
            return energies, -torch.autograd.grad(energies.sum(), pos)[0]

    rows = {}
    with torch.no_grad():
        compiled_forward = torch.compile(model, fullgraph=True)
        compile_forward_s = _first_call_seconds(lambda: compiled_forward(batch))
        torch.testing.assert_close(compiled_forward(batch), model(batch), rtol=1e-4, atol=1e-4)
        model(batch)
        rows["forward"] = dict(eager_ms=1e3 * _median_seconds(lambda: model(batch), args.repeats),
                               compiled_ms=1e3 * _median_seconds(lambda: compiled_forward(batch), args.repeats),
                               compile_s=compile_forward_s)
    start = time.perf_counter()
    compiled_forces = compile_energy_and_forces(energy, batch.pos)
    compile_forces_s = time.perf_counter() - start + _first_call_seconds(lambda: compiled_forces(batch.pos))
    expected, actual = eager_forces(), compiled_forces(batch.pos)
    torch.testing.assert_close(actual[1], expected[1].detach(), rtol=1e-4, atol=1e-4)
    eager_forces()
    rows["forward + forces"] = dict(eager_ms=1e3 * _median_seconds(eager_forces, args.repeats),
                                    compiled_ms=1e3 * _median_seconds(lambda: compiled_forces(batch.pos), args.repeats),
                                    compile_s=compile_forces_s)
    print(f"config {args.config}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    print(f"{'mode':18s} {'eager ms':>9s} {'compiled ms':>12s} {'speed-up':>9s} {'compile s':>10s}")
    for mode, row in rows.items():
        row["speedup"] = row["eager_ms"] / row["compiled_ms"]
        print(f"{mode:18s} {row['eager_ms']:9.1f} {row['compiled_ms']:12.1f} {row['speedup']:9.2f} {row['compile_s']:10.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": args.config, "threads": torch.get_num_threads(),
                                         "machine": platform.processor() or platform.machine(),
                                         "date": time.strftime("%Y-%m-%d"), "results": rows}, indent=1))


if __name__ == "__main__":
    main()
