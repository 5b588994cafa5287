"""How far generated molecules miss EDM's bond table: bond lengths against real molecules, and each unstable atom's gap.

EDM's stability reads bond orders off interatomic distances (reference length plus 10, 5 or 3 pm;
``ponita.datasets.BOND_LENGTHS_PM``). For the molecules of an SDF file (``ponita sample … -o FILE``) and for
``-n`` molecules of EDM's processed QM9 test split, this prints

* per element pair (C–H, C–C, C–O, C–N): the bonded pairs by order, and the share of them whose distance lies
  within 2 pm of a threshold, where a small error flips the order;
* per kind of valence error of the generated atoms (``C-1``: a carbon one bond order short, …): how far (pm) the
  one distance that would repair it lies past its threshold.

Usage:
    python benchmarks/edm_bond_lengths.py mols.sdf --npz ../shared/data/qm9/edm_qm9_test.npz -n 5000
"""

import argparse
from pathlib import Path

import numpy as np
from bench_edm_training import read_npz

from ponita.datasets import (
    BOND_LENGTHS_PM,
    BOND_MARGINS_PM,
    ELEMENTS,
    VALENCES,
    Molecule,
    bond_orders,
    read_molecules,
)

PAIRS = ("CH", "CC", "CO", "CN")


def thresholds_pm(pair: str) -> list[float]:
    """The distances (pm) below which ``pair`` has bond order 1, 2, 3 (only those the table defines)."""
    limits = []
    for lengths, margin in zip(BOND_LENGTHS_PM.values(), BOND_MARGINS_PM):
        for key in (pair, pair[::-1]):  # the table names each pair once, in either order
            if key in lengths:
                limits.append(lengths[key] + margin)
                break
    return limits


def pair_distances(molecules: list[Molecule], pair: str) -> np.ndarray:
    """The distances (pm) of all ``pair`` atom pairs closer than the single-bond threshold."""
    a, b = ELEMENTS.index(pair[0]), ELEMENTS.index(pair[1])
    limit, out = thresholds_pm(pair)[0], []
    for molecule in molecules:
        distance = 100 * np.linalg.norm(molecule.pos[:, None] - molecule.pos[None], axis=-1)
        mask = (molecule.types[:, None] == a) & (molecule.types[None] == b) & (distance < limit)
        if a == b:
            mask &= np.triu(np.ones_like(mask), 1)
        out.append(distance[mask])
    return np.concatenate(out)


def pair_table(label: str, molecules: list[Molecule]) -> None:
    print(f"\n{label}: bonded pairs by EDM's order, and within 2 pm of a threshold\n")
    print("| pair | bonds | order 1 | order 2 | order 3 | within 2 pm of a threshold | mean (pm) |")
    print("|---|---|---|---|---|---|---|")
    for pair in PAIRS:
        distances, limits = pair_distances(molecules, pair), thresholds_pm(pair)
        orders = (distances[:, None] < np.array(limits)[None]).sum(axis=1)  # [M], 1..3
        shares = [f"{100 * np.mean(orders == k):.1f} %" if k <= len(limits) else "–" for k in (1, 2, 3)]
        near = np.abs(distances[:, None] - np.array(limits)[None]).min(axis=1) < 2.0
        print(f"| {pair[0]}–{pair[1]} | {len(distances)} | {' | '.join(shares)} | {100 * near.mean():.1f} % | "
              f"{distances.mean():.1f} |")


def gaps_pm(molecule: Molecule) -> dict[str, list[float]]:
    """For each atom that misses its valence: the distance (pm) by which the pair that would repair it by one
    order lies past that order's threshold (a bond order short: the nearest pair not yet at order 3 that is
    too long; one over: the bonded pair nearest to falling below its order)."""
    orders = bond_orders(molecule)
    excess = orders.sum(axis=1) - np.asarray(VALENCES)[molecule.types]
    distance = 100 * np.linalg.norm(molecule.pos[:, None] - molecule.pos[None], axis=-1)
    gaps: dict[str, list[float]] = {}
    for atom in np.flatnonzero(excess):
        partners = [other for other in range(len(molecule.types)) if other != atom]
        candidates = []
        for other in partners:
            pair = ELEMENTS[molecule.types[atom]] + ELEMENTS[molecule.types[other]]
            limits, order = thresholds_pm(pair), orders[atom, other]
            if excess[atom] < 0 and order < len(limits):  # would need to be shorter than the next order's limit
                candidates.append(distance[atom, other] - limits[order])
            elif excess[atom] > 0 and order > 0:  # would need to be longer than its own order's limit
                candidates.append(limits[order - 1] - distance[atom, other])
        if candidates:
            key = f"{ELEMENTS[molecule.types[atom]]}{int(excess[atom]):+d}"
            gaps.setdefault(key, []).append(min(candidates))
    return gaps


def gap_table(molecules: list[Molecule]) -> None:
    gaps: dict[str, list[float]] = {}
    for molecule in molecules:
        for key, values in gaps_pm(molecule).items():
            gaps.setdefault(key, []).extend(values)
    print("\nValence errors of the generated atoms: how far the repairing distance lies past its threshold\n")
    print("| error | atoms | median gap (pm) | 90th percentile (pm) | within 2 pm | within 5 pm |")
    print("|---|---|---|---|---|---|")
    for key, values in sorted(gaps.items(), key=lambda item: -len(item[1])):
        values = np.array(values)
        print(f"| {key} | {len(values)} | {np.median(values):.1f} | {np.percentile(values, 90):.1f} | "
              f"{100 * np.mean(values < 2):.0f} % | {100 * np.mean(values < 5):.0f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdf", type=Path, help="generated molecules (ponita sample … -o FILE.sdf)")
    parser.add_argument("--npz", type=Path, required=True, help="EDM's processed QM9 split (edm_qm9_test.npz)")
    parser.add_argument("-n", "--num", type=int, default=5000, help="reference molecules (the split's first n)")
    args = parser.parse_args()
    generated = read_molecules(str(args.sdf))
    reference = [Molecule.from_atomic_numbers(data.z.numpy(), data.pos.double().numpy())
                 for data in read_npz(args.npz)[: args.num]]
    pair_table(f"QM9 test molecules ({len(reference)})", reference)
    pair_table(f"{args.sdf} ({len(generated)} molecules)", generated)
    gap_table(generated)


if __name__ == "__main__":
    main()
