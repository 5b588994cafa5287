"""Sample quality of a qm9-edm training checkpoint, with its EMA weights and with its raw (trained) weights.

Early in a run the EMA (decay 0.999) lags the trained weights by far; comparing both tells whether a recipe
learns or only its average has not caught up. Samples ``-n`` molecules (seed 0; sizes from the training
histogram) with the objective's default sampler in ``--steps`` steps and prints EDM's atom and molecule
stability, validity and the mean radius of gyration (Å; exploded samples have a large one).

Usage:
    python benchmarks/edm_checkpoint_quality.py RUN/checkpoints/last.ckpt [-n 200] [--steps 40] [--threads 1]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from ponita.datasets import molecule_metrics, radius_of_gyration
from ponita.models import read_checkpoint
from ponita.train import export_model, sample_molecules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a Lightning checkpoint of `ponita train qm9-edm` (.ckpt)")
    parser.add_argument("-n", "--num", type=int, default=200)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the objective's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        model = read_checkpoint(export_model(args.checkpoint, Path(folder) / "generator.pt")).build().eval()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    trained = {key.removeprefix("model."): value for key, value in state["state_dict"].items()
               if key.startswith("model.")}
    for weights in ("ema", "raw"):
        if weights == "raw":
            model.load_state_dict(trained)
        molecules = sample_molecules(model, args.num, args.steps, 100, torch.Generator().manual_seed(0))
        radius = np.mean([radius_of_gyration(molecule) for molecule in molecules])
        metrics = molecule_metrics(molecules)
        print(f"epoch {state['epoch']} step {state['global_step']} {weights}: atom stability "
              f"{100 * metrics['atom_stability']:.1f} %, molecule stability {100 * metrics['molecule_stability']:.1f} %, "
              f"validity {100 * metrics['validity']:.1f} %, radius of gyration {radius:.2f} Å", flush=True)


if __name__ == "__main__":
    main()
