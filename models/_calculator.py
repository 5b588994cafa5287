"""An ASE calculator that evaluates a :class:`PonitaPotential`."""

import contextlib
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from torch_geometric.data import Data

from ponita.ops import flush_denormals

from ._compiled_forces import compile_energy_and_forces
from ._energy_model import PonitaPotential, load_potential

# ponita works in meV and meV/Å; ASE in eV and eV/Å.
_MEV_TO_EV = 1e-3


class PonitaCalculator(Calculator):
    """ASE calculator for a trained :class:`PonitaPotential`: energy in eV and forces in eV/Å.

    The model runs in eval mode and in its own dtype (float64 after ``model.double()``); positions
    are passed in Å, and the meV outputs are converted to ASE's eV.

    Args:
        model: the potential.
        device: where to run it.
        compile: trace energy and forces into one graph and compile it
            (:func:`ponita.models.compile_energy_and_forces`) on the first call, and again whenever the
            atoms' number or species change. The first call then takes a while (≈ 1 min on a 2-core
            CPU); later ones run 2–3× faster. Same results up to float round-off; the weights are frozen
            at the first call. A potential with a radius is traced on the fully connected graph, where
            its window zeroes the pairs beyond the cutoff (:meth:`ponita.Ponita.static_edges`); a lifted
            space with a radius cannot be compiled (ValueError).
        flush_denormals: evaluate with the CPU flushing denormal floats to zero
            (:func:`ponita.ops.flush_denormals`; the calling thread's mode is restored after each call).
            The GELUs of the kernel basis produce denormals on ordinary molecules, and computing with them
            is slow: one thread runs the compiled aspirin potential 1.5× faster with the flush (docs/performance.md). Results change
            only by numbers below 1e-38.

    Example:
        >>> from ase.build import molecule
        >>> model = PonitaPotential([1, 6, 8], {1: 0.0, 6: 0.0, 8: 0.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4)
        >>> atoms = molecule("CH3CH2OH")
        >>> atoms.calc = PonitaCalculator(model)
        >>> atoms.get_forces().shape
        (9, 3)
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(
        self, model: PonitaPotential, device: str | torch.device = "cpu", compile: bool = False,
        flush_denormals: bool = True,
    ) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.compile = compile
        self.flush_denormals = flush_denormals
        self._compiled: tuple[tuple[int, ...], object] | None = None  # (atomic numbers, compiled function)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", compile: bool = False
    ) -> "PonitaCalculator":
        """A calculator for the potential saved at ``path`` (see :func:`ponita.models.load_potential`)."""
        return cls(load_potential(path, map_location=device), device=device, compile=compile)

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation; fast when only the positions did (a step of dynamics).

        ASE's own comparison (``isclose`` on every array the atoms carry) costs about as much as a
        compiled evaluation of a small molecule. This potential depends on the numbers and positions only
        (and refuses periodic cells), so with the same numbers, cell and boundary conditions an exact
        comparison of the positions decides; anything else goes to ASE's check.
        """
        previous = self.atoms
        if (previous is None or len(previous) != len(atoms) or not np.array_equal(previous.numbers, atoms.numbers)
                or not np.array_equal(previous.pbc, atoms.pbc) or not np.array_equal(previous.cell, atoms.cell)):
            return super().check_state(atoms, tol)
        return [] if np.array_equal(previous.positions, atoms.positions) else ["positions"]

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Computes energy and forces of ``atoms`` and stores them in ``self.results`` (eV, eV/Å)."""
        super().calculate(atoms, properties or ["energy"], system_changes)
        if self.atoms.pbc.any():
            raise ValueError(
                f"PonitaCalculator treats the system as an isolated molecule, but pbc={self.atoms.pbc.tolist()}; "
                "set atoms.pbc = False."
            )
        data = Data(
            z=torch.as_tensor(self.atoms.get_atomic_numbers(), dtype=torch.long, device=self.device),  # [N]
            pos=torch.as_tensor(self.atoms.get_positions(), dtype=torch.float64, device=self.device),  # [N, 3]
        )
        flush = self.flush_denormals and self.device.type == "cpu"
        with flush_denormals() if flush else contextlib.nullcontext():
            energy, forces = self._compiled_call(data) if self.compile else self.model(data)  # [1], [N, 3]
        energy_ev = float(energy.detach().double().cpu()[0]) * _MEV_TO_EV
        self.results = {
            "energy": energy_ev,
            "free_energy": energy_ev,
            "forces": forces.detach().double().cpu().numpy().astype(np.float64) * _MEV_TO_EV,
        }

    def _compiled_call(self, data: Data) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy and forces through the compiled graph of these atoms, compiling it if they are new."""
        numbers = tuple(self.atoms.get_atomic_numbers().tolist())
        pos = data.pos.to(self.model.network.embedding.weight.dtype)  # [N, 3]
        if self._compiled is None or self._compiled[0] != numbers:
            z = data.z  # [N]; the trace runs the eager checks (e.g. unknown elements) once
            edges = self.model.network.static_edges(len(numbers))  # a graph that cannot go stale
            if edges is None:
                raise ValueError(
                    "compile=True needs a graph that does not depend on the positions, but this potential's lifted "
                    f"space builds its points from a {self.model.network.config.radius} Å radius graph; use compile=False."
                )
            function = compile_energy_and_forces(
                lambda p: self.model.energy(Data(z=z, pos=p, edge_index=edges), p), pos
            )
            self._compiled = (numbers, function)
        return self._compiled[1](pos)
