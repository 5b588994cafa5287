"""Where in the noise range a `karras` generator loses stability: real molecules noised to σ and sampled back.

Draws ``-n`` molecules of EDM's processed QM9 test split (a seeded random subset), scores them as they are, then
noises them to each starting level σ and runs the generator's Heun sampler back from there
(:meth:`ponita.models.EDM.resample`: the tail of the default sampler from its first level at or below σ, churn
included). A generator that denoised perfectly from σ would keep the data's own stability; the level at which
stability drops is where training must improve. From the full ``sigma_max`` this is the generator's ordinary
sampling, except that the molecule sizes come from the data. Prints one Markdown row per level.

Usage:
    python benchmarks/edm_resample.py pretrained/qm9_edm_karras.pt --npz ../shared/data/qm9/edm_qm9_test.npz \\
        -n 300 --sigmas 0.02 0.05 0.1 0.2 0.3 0.5
"""

import argparse
import time

import torch
from bench_edm_training import add_test_molecule_arguments, read_npz, sample_batches
from torch_geometric.data import Batch

from ponita.datasets import Molecule, molecule_metrics
from ponita.models import read_checkpoint
from ponita.ops import flush_denormals, scatter_mean
from ponita.train import reuse_freed_memory


def molecules_of(batch: Batch, pos: torch.Tensor, z: torch.Tensor) -> list[Molecule]:
    """The molecules of ``batch`` with positions ``pos`` and atomic numbers ``z`` (one entry per atom)."""
    pos, z, index = pos.double().numpy(), z.numpy(), batch.batch.numpy()
    return [Molecule.from_atomic_numbers(z[index == g], pos[index == g]) for g in range(batch.num_graphs)]


def row(label: str, molecules: list[Molecule], seconds: float | None, shift: float | None) -> str:
    metrics = molecule_metrics(molecules)
    timing = f"{seconds / len(molecules):.2f}" if seconds is not None else "–"
    moved = f"{100 * shift:.1f}" if shift is not None else "–"
    return (f"| {label} | {100 * metrics['atom_stability']:.1f} % | {100 * metrics['molecule_stability']:.1f} % | "
            f"{100 * metrics['validity']:.1f} % | {moved} | {timing} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a generator exported by `ponita train qm9-edm` (.pt), objective karras")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
                        help="starting noise levels (Å)")
    parser.add_argument("--steps", type=int, default=80, help="Heun steps of the full sampler whose tail runs")
    add_test_molecule_arguments(parser, num=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    model = read_checkpoint(args.checkpoint).build("cpu").eval()
    if model.config.objective != "karras":
        parser.error(f"{args.checkpoint} is a 'vp' generator; resampling runs the 'karras' objective's Heun sampler")
    try:
        batches = sample_batches(read_npz(args.npz), args.num, args.seed, args.batch_size)
    except ValueError as error:
        parser.error(str(error))
    centred = [batch.pos.double() - scatter_mean(batch.pos.double(), batch.batch, batch.num_graphs)[batch.batch]
               for batch in batches]  # resample returns positions centred per molecule
    print(f"{args.checkpoint}: {args.num} test molecules, {args.steps}-step sampler, seed {args.seed}\n")
    print("| start σ (Å) | atom stability | molecule stability | validity | RMS displacement (pm) | s / molecule |")
    print("|---|---|---|---|---|---|")
    print(row("clean data", [m for b in batches for m in molecules_of(b, b.pos, b.z)], None, None), flush=True)
    for sigma in args.sigmas:
        generator, molecules, squares, atoms = torch.Generator().manual_seed(args.seed), [], 0.0, 0
        start = time.perf_counter()
        with torch.inference_mode(), flush_denormals():
            for batch, reference in zip(batches, centred):
                out = model.resample(batch, sigma, args.steps, generator)
                molecules += molecules_of(batch, out.pos, out.z)
                squares += float((out.pos.double() - reference).square().sum())
                atoms += batch.num_nodes
        print(row(f"{sigma:g}", molecules, time.perf_counter() - start, (squares / atoms) ** 0.5), flush=True)


if __name__ == "__main__":
    main()
