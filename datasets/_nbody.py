r"""The charged 5-body benchmark ("nbody_small" of EGNN, used by SEGNN and PONITA), generated exactly.

Five particles with charges :math:`q_i = \pm 1` move under the Coulomb-like forces

.. math::
    F_i = \sum_{j \ne i} q_i q_j \frac{p_i - p_j}{\lVert p_i - p_j \rVert^3},

each component clipped to :math:`\pm 100`, integrated by leapfrog with :math:`\Delta t = 0.001` for
5000 steps and recorded every 100 steps (49 frames: steps 100, 200, …, 4900). The recipe and the order
of the random draws follow EGNN's generator (``n_body_system/dataset/synthetic_sim.py`` and
``generate_dataset.py --num-train 10000 --seed 43 --sufix small``), so the arrays equal the published
data to float64 round-off:

* one legacy NumPy stream seeded with 43 serves 10,000 training, then 2,000 validation, then 2,000 test
  simulations;
* per simulation: charges ``choice([-1, 0, 1], size=(5, 1), p=[.5, 0, .5])``; positions
  ``randn(3, 5) · 1``; velocities ``randn(3, 5)`` rescaled to norm 0.5 per particle; one reflection at
  the walls of the box :math:`[-5, 5]^3`; after the run, two noise arrays ``randn(49, 3, 5)`` (their
  variance is 0, but they advance the stream).

The original integrates one simulation at a time in Python (≈ 0.2 s each); :func:`simulate_charged`
integrates all of them at once with the same floating-point operations in the same order.
:func:`simulate_charged_reference` is the one-simulation loop, kept to check it.
"""

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from ._progress import log_progress

logger = logging.getLogger(__name__)


NBODY_SEED = 43
NBODY_SPLITS = {"train": 10_000, "valid": 2_000, "test": 2_000}
"""Simulations per split, generated in this order from one stream."""
NBODY_PARTICLES = 5
NBODY_STEPS = 5_000
NBODY_SAMPLE_EVERY = 100
NBODY_FRAMES = NBODY_STEPS // NBODY_SAMPLE_EVERY - 1  # 49
NBODY_TIMESTEP = 1e-3
NBODY_MAX_FORCE = 0.1 / NBODY_TIMESTEP
NBODY_BOX = 5.0
NBODY_VELOCITY_NORM = 0.5
NBODY_INPUT_FRAME, NBODY_TARGET_FRAME = 30, 40
_FILE_VERSION = 1


@dataclass
class NBodySimulations:
    """Simulations of one split, in the layout of the original ``.npy`` files.

    Attributes:
        loc: positions ``[S, 49, 3, 5]`` (simulation, frame, coordinate, particle).
        vel: velocities ``[S, 49, 3, 5]``.
        charges: charges ``[S, 5, 1]`` (±1).
        edges: :math:`q q^\\top` ``[S, 5, 5]``.
    """

    loc: np.ndarray
    vel: np.ndarray
    charges: np.ndarray
    edges: np.ndarray

    def __len__(self) -> int:
        return self.loc.shape[0]


def draw_initial_states(
    random_state: np.random.RandomState, num: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Charges ``[S, 5, 1]``, positions and velocities ``[S, 3, 5]`` of ``num`` simulations, drawn as the original draws them.

    The two zero-variance noise arrays of each simulation are drawn too, in their place in the stream.
    """
    charges = np.empty((num, NBODY_PARTICLES, 1))
    loc = np.empty((num, 3, NBODY_PARTICLES))
    vel = np.empty((num, 3, NBODY_PARTICLES))
    for index in range(num):
        charges[index] = random_state.choice(np.array([-1.0, 0.0, 1.0]), size=(NBODY_PARTICLES, 1), p=[0.5, 0, 0.5])
        loc[index] = random_state.randn(3, NBODY_PARTICLES) * 1.0  # loc_std = 1 · (5/5)^(1/3)
        velocity = random_state.randn(3, NBODY_PARTICLES)
        norm = np.sqrt((velocity**2).sum(axis=0)).reshape(1, -1)
        vel[index] = velocity * NBODY_VELOCITY_NORM / norm
        random_state.randn(NBODY_FRAMES, 3, NBODY_PARTICLES)  # position noise (variance 0)
        random_state.randn(NBODY_FRAMES, 3, NBODY_PARTICLES)  # velocity noise (variance 0)
    return charges, loc, vel


def _reflect(loc: np.ndarray, vel: np.ndarray) -> None:
    """One elastic reflection at the walls of the box, in place (as the original's ``_clamp``)."""
    if np.any(np.abs(loc) >= 3 * NBODY_BOX):
        raise ValueError("A particle starts more than three box sizes out; the reflection is undefined.")
    over = loc > NBODY_BOX
    loc[over] = 2 * NBODY_BOX - loc[over]
    vel[over] = -np.abs(vel[over])
    under = loc < -NBODY_BOX
    loc[under] = -2 * NBODY_BOX - loc[under]
    vel[under] = np.abs(vel[under])


def _forces(loc: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Clipped forces ``[..., 3, n]`` at positions ``[..., 3, n]``, with the original's operations and their order."""
    points = np.swapaxes(loc, -1, -2)  # [..., n, 3]
    norms = (points**2).sum(axis=-1)  # [..., n]
    squared = norms[..., :, None] + norms[..., None, :] - 2 * np.matmul(points, loc)  # [..., n, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        size = 1.0 * edges / np.power(squared, 3.0 / 2.0)  # [..., n, n]
    diagonal = np.arange(loc.shape[-1])
    size[..., diagonal, diagonal] = 0.0
    difference = loc[..., :, :, None] - loc[..., :, None, :]  # [..., 3, n, n]: p_i - p_j
    force = (size[..., None, :, :] * difference).sum(axis=-1)  # [..., 3, n]
    return np.clip(force, -NBODY_MAX_FORCE, NBODY_MAX_FORCE)


def simulate_charged(
    charges: np.ndarray,
    loc: np.ndarray,
    vel: np.ndarray,
    steps: int = NBODY_STEPS,
    sample_every: int = NBODY_SAMPLE_EVERY,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrates many charged-particle systems at once by the original's leapfrog.

    Args:
        charges: ``[S, n, 1]``.
        loc: initial positions ``[S, 3, n]`` (not modified).
        vel: initial velocities ``[S, 3, n]`` (not modified).
        steps: time steps :math:`T`.
        sample_every: record every this many steps (frames at steps ``sample_every``, ``2·sample_every``, …).
        progress: called as ``progress(step, steps)`` every 100 steps.

    Returns:
        Positions and velocities ``[S, T/sample_every − 1, 3, n]``.
    """
    loc, vel = loc.copy(), vel.copy()
    edges = np.matmul(charges, np.swapaxes(charges, -1, -2))  # [S, n, n]
    _reflect(loc, vel)
    frames = steps // sample_every - 1
    loc_saved = np.zeros((loc.shape[0], frames, *loc.shape[1:]))
    vel_saved = np.zeros_like(loc_saved)
    vel += NBODY_TIMESTEP * _forces(loc, edges)  # half kick
    counter = 0
    for step in range(1, steps):
        loc += NBODY_TIMESTEP * vel
        if step % sample_every == 0:
            loc_saved[:, counter], vel_saved[:, counter] = loc, vel
            counter += 1
        vel += NBODY_TIMESTEP * _forces(loc, edges)
        if progress is not None and step % 100 == 0:
            progress(step, steps)
    return loc_saved, vel_saved


def simulate_charged_reference(
    charges: np.ndarray, loc: np.ndarray, vel: np.ndarray, steps: int = NBODY_STEPS, sample_every: int = NBODY_SAMPLE_EVERY
) -> tuple[np.ndarray, np.ndarray]:
    """One system ``charges [n, 1]``, ``loc``/``vel`` ``[3, n]``, integrated step by step as the original does."""
    n = loc.shape[1]
    loc, vel = loc.copy(), vel.copy()
    edges = charges.dot(charges.T)
    _reflect(loc, vel)

    def forces(position: np.ndarray) -> np.ndarray:
        points = position.T
        norms = (points**2).sum(axis=1)
        squared = norms.reshape(n, 1) + norms.reshape(1, n) - 2 * points.dot(position)
        with np.errstate(divide="ignore", invalid="ignore"):
            size = 1.0 * edges / np.power(squared, 3.0 / 2.0)
        np.fill_diagonal(size, 0)
        difference = np.concatenate([np.subtract.outer(position[d], position[d]).reshape(1, n, n) for d in range(3)])
        force = (size.reshape(1, n, n) * difference).sum(axis=-1)
        force[force > NBODY_MAX_FORCE] = NBODY_MAX_FORCE
        force[force < -NBODY_MAX_FORCE] = -NBODY_MAX_FORCE
        return force

    frames = steps // sample_every - 1
    loc_saved, vel_saved = np.zeros((frames, 3, n)), np.zeros((frames, 3, n))
    vel += NBODY_TIMESTEP * forces(loc)
    counter = 0
    for step in range(1, steps):
        loc += NBODY_TIMESTEP * vel
        if step % sample_every == 0:
            loc_saved[counter], vel_saved[counter] = loc, vel
            counter += 1
        vel += NBODY_TIMESTEP * forces(loc)
    return loc_saved, vel_saved


def generate_nbody(
    seed: int = NBODY_SEED,
    sizes: dict[str, int] | None = None,
    chunk: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, NBodySimulations]:
    """Generates the splits of the charged 5-body benchmark from one stream (see the module docstring).

    Args:
        seed: seed of the legacy NumPy stream (43 for "nbody_small").
        sizes: simulations per split, in generation order (default :data:`NBODY_SPLITS`); a smaller
            count gives a prefix of the stream (the first simulations of the same splits only for the
            first split).
        chunk: simulations integrated together (memory and cache size; the result does not depend on it).
        progress: called as ``progress(done, total)`` with simulations finished.

    Returns:
        ``{"train": ..., "valid": ..., "test": ...}``.
    """
    sizes = dict(NBODY_SPLITS if sizes is None else sizes)
    random_state = np.random.RandomState(seed)
    drawn = {name: draw_initial_states(random_state, size) for name, size in sizes.items()}
    total, done = sum(sizes.values()), 0
    result = {}
    for name, (charges, loc, vel) in drawn.items():
        loc_parts, vel_parts = [], []
        for start in range(0, len(charges), chunk):
            part = slice(start, start + chunk)
            loc_part, vel_part = simulate_charged(charges[part], loc[part], vel[part])
            loc_parts.append(loc_part)
            vel_parts.append(vel_part)
            done += len(loc_part)
            if progress is not None:
                progress(done, total)
        edges = np.matmul(charges, np.swapaxes(charges, -1, -2))
        result[name] = NBodySimulations(np.concatenate(loc_parts), np.concatenate(vel_parts), charges, edges)
    return result


def default_nbody_dir() -> Path:
    """Where the generated arrays are cached: ``$XDG_CACHE_HOME/ponita/nbody`` (``~/.cache/ponita/nbody``)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ponita" / "nbody"


def write_nbody(directory: str | Path, progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
    """Generates the benchmark and writes ``nbody_small_<split>.npz`` files (``loc``, ``vel``, ``charges``, ``edges``).

    Returns:
        The file of each split.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, simulations in generate_nbody(progress=progress).items():
        path = directory / f"nbody_small_{name}.npz"
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, loc=simulations.loc, vel=simulations.vel, charges=simulations.charges,
                 edges=simulations.edges, version=_FILE_VERSION, seed=NBODY_SEED)
        partial.replace(path)  # never leaves a half-written file under the final name
        paths[name] = path
    return paths


def load_nbody(
    split: str,
    data_dir: str | Path | None = None,
    max_samples: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> NBodySimulations:
    """The simulations of one split, generated once and cached in ``data_dir``.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        data_dir: folder of the ``nbody_small_<split>.npz`` files (default :func:`default_nbody_dir`);
            missing files are generated (≈ 1 min) and written there.
        max_samples: keep the first this many simulations (3000 for the training split in the benchmark).
        progress: called while generating, as ``progress(done, total)``.

    Raises:
        ValueError: on an unknown split, or a cached file that is not a complete ponita N-body file.
    """
    if split not in NBODY_SPLITS:
        raise ValueError(f"Unknown N-body split {split!r}; choose one of {', '.join(NBODY_SPLITS)}.")
    directory = Path(data_dir) if data_dir is not None else default_nbody_dir()
    path = directory / f"nbody_small_{split}.npz"
    if not path.is_file():
        logger.warning("Generating the N-body benchmark into %s (about a minute, once; `ponita data nbody` does this "
                       "explicitly with a progress bar).", directory)
        write_nbody(directory, progress or log_progress(logger, "simulations"))
    try:
        with np.load(path) as arrays:
            if int(arrays["version"]) != _FILE_VERSION:
                raise ValueError(f"version {int(arrays['version'])}")
            simulations = NBodySimulations(arrays["loc"], arrays["vel"], arrays["charges"], arrays["edges"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} is not a complete N-body file ({error}); delete it and it is generated again."
        ) from None
    if len(simulations) != NBODY_SPLITS[split]:
        raise ValueError(f"{path} holds {len(simulations)} simulations, not {NBODY_SPLITS[split]}; delete it.")
    if max_samples is not None:
        simulations = NBodySimulations(*(array[:max_samples] for array in
                                         (simulations.loc, simulations.vel, simulations.charges, simulations.edges)))
    return simulations


def nbody_samples(
    simulations: NBodySimulations, input_frame: int = NBODY_INPUT_FRAME, target_frame: int = NBODY_TARGET_FRAME
) -> list[Data]:
    """One ``Data`` per simulation: ``pos``, ``vel`` ``[5, 3]`` and ``charge`` ``[5, 1]`` at ``input_frame``,
    ``target`` ``[5, 3]`` the positions at ``target_frame`` (float32, as the benchmark's loader)."""
    loc = torch.from_numpy(simulations.loc).float().transpose(2, 3)  # [S, 49, 5, 3]
    vel = torch.from_numpy(simulations.vel).float().transpose(2, 3)  # [S, 49, 5, 3]
    charges = torch.from_numpy(simulations.charges).float()  # [S, 5, 1]
    return [
        Data(pos=loc[index, input_frame], vel=vel[index, input_frame], charge=charges[index],
             target=loc[index, target_frame])
        for index in range(len(simulations))
    ]
