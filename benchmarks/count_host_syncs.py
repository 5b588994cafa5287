"""Counts the host synchronisations in one forward pass of Ponita and of the potential, per input kind.

A host synchronisation is an operation after which the host must wait for the GPU: a read of a tensor
value (``.item()``, ``bool(t)``, ``int(t)``, an ``if`` on a tensor) or an operator whose output size
depends on tensor values (``nonzero``, boolean masks, ``unique``, ``bincount``, ``repeat_interleave``
without ``output_size``). They are counted with :class:`ponita.testing.HostSyncCounter`, a
``TorchDispatchMode`` that sees every aten operator, on the CPU (the count is the same on a GPU).

Usage::

    python benchmarks/count_host_syncs.py [--json bench_results/host_syncs.json]
"""

import argparse
import json
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

import ponita
from ponita import Ponita
from ponita.testing import HostSyncCounter

BUNDLES = ("R2xS1", "R3xS2", "SE2", "SE3")


def _molecule(dim: int, num_nodes: int, seed: int) -> Data:
    generator = torch.Generator().manual_seed(seed)
    ori = torch.randn(num_nodes, dim, generator=generator)
    rot, _ = torch.linalg.qr(torch.randn(num_nodes, dim, dim, generator=generator))
    rot[:, :, 0] *= torch.linalg.det(rot).sign()[:, None]
    return Data(
        pos=2.0 * torch.randn(num_nodes, dim, generator=generator), x=torch.randn(num_nodes, 2, generator=generator),
        vec=torch.randn(num_nodes, 1, dim, generator=generator), ori=ori / ori.norm(dim=-1, keepdim=True), rot=rot,
    )


def _edges(num_nodes: int) -> torch.Tensor:
    receivers, senders = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    off_diagonal = senders != receivers
    return torch.stack([senders[off_diagonal], receivers[off_diagonal]])  # [2, N(N-1)]


def _count(model: torch.nn.Module, data: Data) -> dict:
    model(data)  # warm-up outside the count (lazy initialisation)
    with HostSyncCounter() as counter:
        model(data)
    return {"total": counter.total, **dict(sorted(counter.counts.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args()
    rows = {}
    for space in ponita.SPACES:
        dim = 2 if space.startswith(("R2", "SE2")) else 3
        vectors = int(space not in ("R2", "R3"))
        options = dict(input_dim=2, input_dim_vec=vectors, output_dim_vec=vectors, hidden_dim=8, num_layers=2,
                       space=space, num_ori=4 if space in BUNDLES else None)
        single = _molecule(dim, 9, seed=0)
        single.edge_index = _edges(9)
        rows[f"{space}, edges given"] = _count(Ponita(task_level="node", **options), single)
        graphs = [_molecule(dim, n, seed) for seed, n in enumerate((9, 7, 5))]
        for graph in graphs:
            graph.edge_index = _edges(graph.pos.shape[0])
        rows[f"{space}, batch of 3, edges given, graph-level"] = _count(Ponita(**options), Batch.from_data_list(graphs))
        for graph in graphs:
            del graph.edge_index
        if space in ("R3", "R3xS2", "R3xS2-lifted"):
            plain = _molecule(dim, 9, seed=0)
            rows[f"{space}, one molecule, fully connected built"] = _count(Ponita(task_level="node", **options), plain)
            batch = Batch.from_data_list(graphs)
            rows[f"{space}, batch of 3, fully connected built"] = _count(Ponita(task_level="node", **options), batch)
            rows[f"{space}, batch of 3, radius graph built"] = _count(
                Ponita(task_level="node", radius=3.0, **options), batch
            )
    width = max(map(len, rows))
    for name, counts in rows.items():
        detail = ", ".join(f"{kind} {n}" for kind, n in counts.items() if kind != "total")
        print(f"{name:{width}s}  {counts['total']:3d}  {detail}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
