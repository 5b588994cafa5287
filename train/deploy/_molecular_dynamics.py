"""Molecular dynamics with ASE and a ponita potential, with energy-drift bookkeeping."""

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

ENSEMBLES = ("nve", "langevin")


@dataclass
class MDResult:
    """Energies of a simulation in eV, one entry per step (step 0 included).

    Attributes:
        steps: the step numbers 0 … steps.
        potential_energy: potential energies.
        total_energy: potential plus kinetic energies.
        temperature: instantaneous temperatures in K.
        num_atoms: atoms in the system.
        trajectory: the extxyz file written, or ``None``.
    """

    steps: list[int]
    potential_energy: list[float]
    total_energy: list[float]
    temperature: list[float]
    num_atoms: int
    trajectory: Path | None

    @property
    def max_drift(self) -> float:
        """:math:`\\max_t |E_\\mathrm{tot}(t) - E_\\mathrm{tot}(0)|` in eV."""
        total = np.asarray(self.total_energy)
        return float(np.abs(total - total[0]).max())

    @property
    def max_drift_per_atom(self) -> float:
        """:attr:`max_drift` divided by the number of atoms, in eV/atom."""
        return self.max_drift / self.num_atoms


def run_md(
    atoms: Atoms,
    steps: int,
    temperature: float = 300.0,
    ensemble: str = "nve",
    timestep: float = 0.5,
    trajectory: str | Path | None = None,
    write_every: int = 10,
    friction: float = 0.01,
    seed: int = 0,
    callback: Callable[[int, float, float, float], None] | None = None,
    callback_every: int = 50,
) -> MDResult:
    """Runs NVE (velocity Verlet) or Langevin dynamics of ``atoms`` with its attached calculator.

    Velocities are drawn from the Maxwell-Boltzmann distribution at ``temperature``, with the centre
    of mass momentum and the angular momentum removed.

    Args:
        atoms: the system, with a calculator (e.g. :class:`ponita.models.PonitaCalculator`).
        steps: number of time steps.
        temperature: initial (NVE) or bath (Langevin) temperature in K.
        ensemble: ``"nve"`` or ``"langevin"``.
        timestep: in fs.
        trajectory: extxyz file to write every ``write_every`` steps (``None``: none).
        write_every: interval of trajectory frames, in steps.
        friction: Langevin friction in 1/fs.
        seed: seed of the initial velocities and the Langevin noise.
        callback: called as ``callback(step, potential_energy, total_energy, temperature)`` every
            ``callback_every`` steps (energies in eV), e.g. to print progress.
        callback_every: interval of ``callback`` calls.

    Returns:
        The recorded energies.

    Raises:
        ValueError: on an unknown ensemble or a non-positive number of steps or timestep.
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"Unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}.")
    if steps < 1 or timestep <= 0:
        raise ValueError(f"steps must be ≥ 1 and timestep > 0, got steps={steps}, timestep={timestep}.")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # ASE ≥ 3.29 prefers thermalize_momenta, which older versions lack
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    if ensemble == "nve":
        dynamics = VelocityVerlet(atoms, timestep * units.fs)
    else:
        dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs, rng=rng)
    path = Path(trajectory) if trajectory is not None else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    result = MDResult([], [], [], [], len(atoms), path)

    def record() -> None:
        step = dynamics.nsteps
        potential = float(atoms.get_potential_energy())
        total = potential + float(atoms.get_kinetic_energy())
        temperature_now = float(atoms.get_temperature())
        result.steps.append(step)
        result.potential_energy.append(potential)
        result.total_energy.append(total)
        result.temperature.append(temperature_now)
        if path is not None and (step % write_every == 0 or step == steps):
            ase.io.write(path, atoms, format="extxyz", append=True)
        if callback is not None and (step % callback_every == 0 or step == steps):
            callback(step, potential, total, temperature_now)

    dynamics.attach(record, interval=1)  # ASE also calls it before the first step
    dynamics.run(steps)
    return result


def benchmark_md(model, atoms: Atoms, steps: int = 300, frames: int = 50, compile: bool = False,
                 timestep: float = 0.5, temperature: float = 300.0, flush_denormals: bool = True) -> dict:
    """Speed of a potential where users feel it: inference per frame and NVE molecular dynamics.

    Runs on a copy of ``atoms`` with a fresh :class:`ponita.models.PonitaCalculator`: one first call
    (with ``compile``, tracing and compiling happen here), ``frames`` timed energy-and-force calls on
    slightly moved positions (median), then ``steps`` of velocity Verlet from ``temperature``, timed as a
    whole (ASE's integrator and bookkeeping included, as in ``ponita md``). ``flush_denormals`` as in
    :class:`ponita.models.PonitaCalculator`.

    Returns:
        ``first_call_s``, ``inference_ms`` (median per frame), ``md_steps_per_s``, ``md_drift_eV`` (max
        |E_tot(t) − E_tot(0)|), ``num_atoms``, ``steps``, ``compile``.
    """
    import time

    from ponita.models import PonitaCalculator

    atoms = atoms.copy()
    atoms.calc = PonitaCalculator(model, compile=compile, flush_denormals=flush_denormals)
    start = time.perf_counter()
    atoms.get_forces()
    first_call = time.perf_counter() - start
    rng = np.random.default_rng(0)
    origin, times = atoms.get_positions(), []
    for _ in range(frames):
        atoms.set_positions(origin + 0.01 * rng.standard_normal(origin.shape))
        start = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    atoms.set_positions(origin)
    start = time.perf_counter()
    result = run_md(atoms, steps, temperature, "nve", timestep)
    seconds = time.perf_counter() - start
    return {"num_atoms": len(atoms), "compile": compile, "first_call_s": first_call,
            "inference_ms": 1e3 * float(np.median(times)), "md_steps_per_s": steps / seconds,
            "md_drift_eV": result.max_drift, "steps": steps}
