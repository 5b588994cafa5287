"""How much a trained potential's predictions depend on the molecule's orientation, and what averaging
over random rotations at test time gives (docs/potentials.md, "Equivariance error of a 6-direction grid").

For the first ``--frames`` test frames: the force and energy MAE between predictions for the frames as
given and rotated (rotated back), and the test MAEs of predictions averaged over 1, 2, 4, 8, 16 random
rotations.

Usage:
    python benchmarks/potential_rotations.py POTENTIAL --molecule aspirin --data-dir ../shared/data/rmd17
        [--frames 200] [--seed 0]
"""

import argparse

import torch
from torch_geometric.data import Batch

from ponita.datasets import load_rmd17
from ponita.geometry import random_rotation
from ponita.models import load_potential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("potential")
    parser.add_argument("--molecule", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_potential(args.potential)
    frames = load_rmd17(args.molecule, "test", split=1, data_dir=args.data_dir)[: args.frames]
    batch = Batch.from_data_list(frames)
    torch.manual_seed(args.seed)

    def predict(rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rotated = batch.clone()
        rotated.pos = batch.pos @ rotation.T
        energy, forces = model(rotated)
        return energy.detach().double(), forces.detach().double() @ rotation  # rotated back

    identity = torch.eye(3, dtype=batch.pos.dtype)
    energy0, forces0 = predict(identity)
    energy_sum, forces_sum = torch.zeros_like(energy0), torch.zeros_like(forces0)
    for count in range(1, 17):
        energy, forces = predict(random_rotation(3).to(batch.pos.dtype))
        if count == 1:
            print(f"prediction change under one rotation: forces {(forces - forces0).abs().mean():.1f} meV/Å, "
                  f"energy {(energy - energy0).abs().mean():.1f} meV")
        energy_sum, forces_sum = energy_sum + energy, forces_sum + forces
        if count in (1, 2, 4, 8, 16):
            energy_mae = (energy_sum / count - batch.energy).abs().mean()
            forces_mae = (forces_sum / count - batch.forces).abs().mean()
            print(f"averaged over {count:2d} rotations: energy MAE {energy_mae:.1f} meV, force MAE {forces_mae:.1f} meV/Å")


if __name__ == "__main__":
    main()
