"""Full-model benchmark of Ponita: training step, inference and peak memory, per spatial-conv backend.

Configurations (issue #3):
    aspirin   rMD17 aspirin, batch 5 × 21 atoms, fully connected with self-loops, O=20, C=128,
              basis 256, 5 layers, degree 3; training step = energy + forces (double backward).
    qm9       QM9 generation, batch 96 × 18 atoms, fully connected, O=16, C=256, basis 256,
              9 layers, node-level outputs with a noise-conditioned kernel; no forces.
    large     1,000 atoms in a periodic-free box at liquid density, 5 Å radius graph, O=16, C=128,
              basis 256, 5 layers; energy + forces.

Every (configuration, backend, precision) runs in a fresh subprocess so its peak RSS is its own. On
``--device cuda`` times are taken between ``torch.cuda.synchronize()`` calls and the memory column is
the peak of ``torch.cuda.max_memory_allocated`` (TF32 off, so fp32 is full float32).

Usage:
    python benchmarks/bench_model.py [--configs aspirin qm9 large] [--backends reference cpu]
        [--precisions fp32 bf16] [--repeats 3] [--json bench_results/model.json] [--device cpu|cuda]
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "aspirin": dict(graphs=5, atoms=21, num_ori=20, hidden_dim=128, basis_dim=256, num_layers=5,
                    forces=True, radius=None, task_level="graph", kernel_condition_dim=0),
    "qm9": dict(graphs=96, atoms=18, num_ori=16, hidden_dim=256, basis_dim=256, num_layers=9,
                forces=False, radius=None, task_level="node", kernel_condition_dim=1),
    "large": dict(graphs=1, atoms=1000, num_ori=16, hidden_dim=128, basis_dim=256, num_layers=5,
                  forces=True, radius=5.0, task_level="graph", kernel_condition_dim=0),
}


def run_one(config_name: str, backend: str, precision: str, repeats: int, device: str = "cpu") -> dict:
    """Times one configuration in this process; returns seconds per step and peak memory."""
    import torch
    from torch_geometric.data import Batch, Data

    from ponita import Ponita
    from ponita.ops import use_backend

    torch.manual_seed(0)
    cfg = CONFIGS[config_name]
    model = Ponita(
        input_dim=5, hidden_dim=cfg["hidden_dim"], basis_dim=cfg["basis_dim"], num_layers=cfg["num_layers"],
        output_dim=5 if cfg["task_level"] == "node" else 1, output_dim_vec=1 if cfg["task_level"] == "node" else 0,
        num_ori=cfg["num_ori"], radius=cfg["radius"], task_level=cfg["task_level"], degree=3,
        kernel_condition_dim=cfg["kernel_condition_dim"], multiple_readouts=cfg["forces"],
    )
    box = (cfg["atoms"] / 0.1) ** (1 / 3) if cfg["radius"] else 4.0  # 0.1 atoms/Å³ for the large system
    graphs = []
    for _ in range(cfg["graphs"]):
        data = Data(pos=torch.rand(cfg["atoms"], 3) * box, x=torch.randn(cfg["atoms"], 5))
        if cfg["kernel_condition_dim"]:
            data.kernel_condition = torch.full((cfg["atoms"], 1), 0.3)
        graphs.append(data)
    batch = Batch.from_data_list(graphs).to(device)
    model = model.to(device)
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def forward() -> tuple:
        pos = batch.pos.clone().requires_grad_(cfg["forces"])
        inputs = batch.clone()
        inputs.pos = pos
        with autocast:
            scalar, vector = model(inputs)
        return pos, scalar, vector

    def train_step() -> None:
        optimizer.zero_grad()
        pos, scalar, vector = forward()
        if cfg["forces"]:
            energy = scalar.float().sum()
            forces = -torch.autograd.grad(energy, pos, create_graph=True)[0]
            loss = energy.pow(2) + forces.pow(2).mean()
        else:
            loss = scalar.float().pow(2).mean() + vector.float().pow(2).mean()
        loss.backward()
        optimizer.step()

    def inference() -> None:
        pos, scalar, _ = forward()
        if cfg["forces"]:
            torch.autograd.grad(scalar.float().sum(), pos)
        else:
            scalar.sum().item()

    def timed(step) -> float:
        step()  # warm-up (and, for Triton, compilation)
        if on_cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        if on_cuda:
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / repeats

    with use_backend(backend):
        train_seconds = timed(train_step)
        inference_seconds = timed(inference)
    if on_cuda:
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(config=config_name, backend=backend, precision=precision, device=device,
                train_step_s=train_seconds, inference_s=inference_seconds, peak_rss_mb=peak_mb,
                num_threads=torch.get_num_threads(), nodes=int(batch.num_nodes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--backends", nargs="+", default=["reference", "cpu"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("bench_results/model.json"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--single", nargs=3, metavar=("CONFIG", "BACKEND", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run_one(*args.single, repeats=args.repeats, device=args.device)))
        return
    results = []
    memory = "peak CUDA MB" if args.device.startswith("cuda") else "peak RSS MB"
    print(f"{'config':8s} {'backend':9s} {'prec':5s} {'train step s':>12s} {'inference s':>12s} {memory:>12s}")
    for config_name in args.configs:
        for precision in args.precisions:
            for backend in args.backends:
                command = [sys.executable, __file__, "--single", config_name, backend, precision,
                           "--repeats", str(args.repeats), "--device", args.device]
                completed = subprocess.run(command, capture_output=True, text=True)
                if completed.returncode != 0:
                    print(f"{config_name:8s} {backend:9s} {precision:5s} FAILED: {completed.stderr.strip()[-300:]}")
                    continue
                result = json.loads(completed.stdout.strip().splitlines()[-1])
                results.append(result)
                print(f"{config_name:8s} {backend:9s} {precision:5s} {result['train_step_s']:12.3f} "
                      f"{result['inference_s']:12.3f} {result['peak_rss_mb']:12.0f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = platform.processor() or platform.machine()
    if args.device.startswith("cuda"):
        import torch

        machine = torch.cuda.get_device_name(args.device)
    args.json.write_text(json.dumps({"machine": machine,
                                     "date": time.strftime("%Y-%m-%d"), "results": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
