"""The denoising error of `karras` generators side by side, at the noise levels where stability is decided.

For each noise level σ, every generator denoises the same ``-n`` molecules of EDM's processed QM9 test split
with the same noise in one call (:meth:`ponita.models.EDM.denoising_error`: the RMS error per coordinate of the
estimated clean positions, in pm). Paired like this, differences far below the error itself are resolved: the
measure for A/B runs of a recipe that sampling (±1.5 points of molecule stability at 1000 molecules) cannot
separate. Generators are exported models (.pt) or training checkpoints (.ckpt, their EMA weights). Prints one
Markdown row per generator. ``--regrid O GRID`` adds, for each generator, a row of the same weights on another
S² grid of ``O`` directions (what a trained network gives on a grid it was not trained on).

Usage:
    python benchmarks/edm_denoising_error.py pretrained/qm9_edm_karras.pt RUN/checkpoints/last.ckpt \\
        --npz ../shared/data/qm9/edm_qm9_test.npz -n 2000 --sigmas 0.05 0.1 0.2 0.3 0.5
"""

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch
from bench_edm_training import add_test_molecule_arguments, read_npz, sample_batches

from ponita.models import EDM, read_checkpoint
from ponita.ops import flush_denormals
from ponita.train import export_model, reuse_freed_memory


def load_generator(path: str) -> torch.nn.Module:
    """An exported generator, or the EMA weights of a training checkpoint."""
    if path.endswith(".ckpt"):
        with tempfile.TemporaryDirectory() as folder:
            return read_checkpoint(export_model(path, Path(folder) / "generator.pt")).build("cpu").eval()
    return read_checkpoint(path).build("cpu").eval()


def regridded(model: EDM, num_ori: int, grid: str) -> EDM:
    """The same weights on another S² grid (the grid is the network's only direction-count-dependent buffer)."""
    config = dataclasses.replace(model.config, network={**model.config.network, "num_ori": num_ori, "grid": grid})
    other = EDM.from_config(config)
    weights = {name: value for name, value in model.state_dict().items() if name != "network.space.grid"}
    missing, unexpected = other.load_state_dict(weights, strict=False)
    assert missing == ["network.space.grid"] and not unexpected, (missing, unexpected)
    return other.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generators", nargs="+", help="exported generators (.pt) or training checkpoints (.ckpt)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.5],
                        help="noise levels (Å)")
    parser.add_argument("--regrid", nargs=2, action="append", default=[], metavar=("O", "GRID"),
                        help="also each generator's weights on this grid (e.g. 12 fibonacci, 8 polyhedron); repeatable")
    add_test_molecule_arguments(parser, num=2000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    models = {path: load_generator(path) for path in args.generators}
    for path in args.generators:
        for num_ori, grid in args.regrid:
            models[f"{path}, {grid} {num_ori}"] = regridded(models[path], int(num_ori), grid)
    vp = [path for path, model in models.items() if model.config.objective != "karras"]
    if vp:
        parser.error(f"{', '.join(vp)}: 'vp' generators; compare 'karras' generators, whose σ is the noise itself")
    try:
        batches = sample_batches(read_npz(args.npz), args.num, args.seed, args.batch_size)
    except ValueError as error:
        parser.error(str(error))
    print(f"{args.num} test molecules, seed {args.seed}; RMS error per coordinate of the denoised positions (pm)\n")
    print("| generator | " + " | ".join(f"σ = {sigma:g} Å" for sigma in args.sigmas) + " |")
    print("|---|" + "---|" * len(args.sigmas))
    for path, model in models.items():
        errors = []
        for sigma in args.sigmas:
            generator, squares, atoms = torch.Generator().manual_seed(args.seed), 0.0, 0
            with torch.inference_mode(), flush_denormals():
                for batch in batches:  # the error is an RMS over the batch's atoms: weight it back by them
                    squares += float(model.denoising_error(batch, sigma, generator)) ** 2 * batch.num_nodes
                    atoms += batch.num_nodes
            errors.append(100 * (squares / atoms) ** 0.5)
        print(f"| {path} | " + " | ".join(f"{error:.3f}" for error in errors) + " |", flush=True)


if __name__ == "__main__":
    main()
