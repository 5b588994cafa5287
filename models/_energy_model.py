r"""An interatomic potential built on :class:`ponita.Ponita`: per-atom energies, total energy and forces.

Bekkers et al., "Fast, Expressive SE(n) Equivariant Networks through Weight-Sharing in
Position-Orientation Space", ICLR 2024 (arXiv 2310.02970), rMD17 experiments.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from ponita import Ponita
from ponita.datasets import MAX_ATOMIC_NUMBER
from ponita.graph import num_graphs
from ponita.ops import require, scatter_sum

from ._checkpoint import describe_model, read_checkpoint, register_model
from ._network_model import NetworkModel, graph_fields
from ._zoo_config import NetworkModelConfig, statistic


def compute_forces(energy: Tensor, pos: Tensor, training: bool) -> Tensor:
    r"""Forces as the negative gradient of the energy, :math:`F_i = -\partial E / \partial x_i`.

    The single place where ponita computes forces. The energies of different graphs do not depend on
    each other's positions, so the gradient of their sum gives every graph's forces at once.

    Args:
        energy: energies ``[G]`` that depend on ``pos``.
        pos: positions ``[N, 3]`` with ``requires_grad=True``.
        training: keep the graph of the gradient (``create_graph``), needed to train on forces.

    Returns:
        Forces ``[N, 3]`` in the unit of ``energy`` per unit of ``pos``.

    Example:
        >>> pos = torch.tensor([[1.0, 2.0, 0.0]], requires_grad=True)
        >>> compute_forces(pos.pow(2).sum().view(1), pos, training=False)
        tensor([[-2., -4., -0.]])
    """
    (gradient,) = torch.autograd.grad(
        energy.sum(), pos, create_graph=training, retain_graph=training
    )  # [N, 3]
    return -gradient


@dataclass
class PotentialConfig(NetworkModelConfig):
    """Everything :class:`PonitaPotential` is built from: its statistics and its network's options.

    Attributes:
        atomic_numbers: the elements the model knows, in one-hot order (a statistic: the training data's).
        reference_energies: :math:`E_0` per atomic number (meV; a statistic).
        scale: :math:`s`, the RMS of the training forces (meV/Å; a statistic).
        network: the :class:`ponita.Ponita` options (see :class:`ponita.PonitaConfig`) except the input and
            output sizes, ``task_level`` and ``kernel_condition_dim``, which the potential sets itself.
    """

    atomic_numbers: list[int] = statistic(example=[1])
    reference_energies: dict[int, float] = statistic(example={1: 0.0})
    scale: float = statistic(example=1.0)
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        atomic_numbers = self.atomic_numbers = [int(z) for z in self.atomic_numbers]
        if not atomic_numbers or len(set(atomic_numbers)) != len(atomic_numbers):
            raise ValueError(f"atomic_numbers must be a non-empty list of distinct elements, got {atomic_numbers}.")
        if min(atomic_numbers) < 1 or max(atomic_numbers) > MAX_ATOMIC_NUMBER:
            raise ValueError(f"atomic_numbers must lie in 1..{MAX_ATOMIC_NUMBER}, got {atomic_numbers}.")
        missing = [z for z in atomic_numbers if z not in self.reference_energies]
        if missing:
            raise ValueError(
                f"reference_energies lacks the element(s) {missing}; give E0 for every atomic number, e.g. "
                "from ponita.datasets.fit_atomic_reference_energies(train_frames)."
            )
        self.reference_energies = {z: float(self.reference_energies[z]) for z in atomic_numbers}
        if not self.scale > 0:
            raise ValueError(f"scale must be positive (the RMS of the training forces in meV/Å), got {self.scale}.")
        self.scale = float(self.scale)
        super().__post_init__()

    def derived_network_options(self) -> dict[str, Any]:
        return {"input_dim": len(self.atomic_numbers), "output_dim": 1, "task_level": "node", "input_dim_vec": 0,
                "output_dim_vec": 0, "kernel_condition_dim": 0}


@register_model
class PonitaPotential(NetworkModel):
    r"""A PONITA network that predicts a molecule's energy as a sum of atomic energies, and forces.

    .. math::
        E = \sum_i \big( s \, \varphi(z, x)_i + E_0[z_i] \big), \qquad F_i = -\frac{\partial E}{\partial x_i},

    where :math:`\varphi` is a :class:`ponita.Ponita` network with ``task_level="node"`` and one output
    per atom, fed the one-hot encoding of the atomic numbers :math:`z_i` over ``atomic_numbers``;
    :math:`s` is ``scale`` (the RMS of the training forces, so the network's outputs are of order one
    in units of :math:`s`), and :math:`E_0[z]` are the per-element ``reference_energies``. Energies
    are in meV, forces in meV/Å, positions in Å. Both statistics come from the training data (see
    :func:`ponita.datasets.fit_atomic_reference_energies` and :func:`ponita.datasets.force_rms`) and
    are stored as buffers.

    The per-atom sum is accumulated in float64: molecular energies are of order :math:`10^6` meV,
    where float32 resolves only about 0.25 meV. The returned energy is therefore float64; forces have
    the network's dtype (``model.double()`` makes everything float64).

    Args:
        atomic_numbers: the elements the model knows, e.g. ``[1, 6, 8]``; their order sets the one-hot
            encoding.
        reference_energies: :math:`E_0` per atomic number, in meV; needs every element of
            ``atomic_numbers``.
        scale: :math:`s`, in meV/Å; positive.
        **ponita_options: the arguments of :class:`ponita.Ponita` (see :class:`ponita.PonitaConfig`)
            except ``input_dim``, ``output_dim``, ``task_level``, the vector dimensions and
            ``kernel_condition_dim``, which the potential sets (:class:`PotentialConfig`).

    Shapes:
        input ``data.z`` ``[N]``, ``data.pos`` ``[N, 3]``, optional ``data.batch`` ``[N]`` →
        energy ``[G]``, forces ``[N, 3]``.

    Raises:
        ValueError: on duplicate or out-of-range atomic numbers, missing reference energies, a
            non-positive scale, or (in ``forward``) an element not in ``atomic_numbers``.
        TypeError: on an unknown Ponita argument or one the potential sets itself.

    Example:
        >>> from torch_geometric.data import Data
        >>> model = PonitaPotential([1, 8], {1: -10.0, 8: -20.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4)
        >>> energy, forces = model(Data(z=torch.tensor([8, 1, 1]), pos=torch.randn(3, 3)))
        >>> energy.shape, forces.shape
        (torch.Size([1]), torch.Size([3, 3]))
    """

    config_class = PotentialConfig
    description = "an interatomic potential"

    def __init__(
        self,
        atomic_numbers: list[int],
        reference_energies: dict[int, float],
        scale: float,
        **ponita_options: object,
    ) -> None:
        super().__init__()
        self.config = config = PotentialConfig(atomic_numbers, reference_energies, scale, dict(ponita_options))
        atomic_numbers = config.atomic_numbers
        self.network = Ponita.from_config(config.network_config())
        element_index = torch.full((MAX_ATOMIC_NUMBER + 1,), -1, dtype=torch.long)  # [119]
        element_index[atomic_numbers] = torch.arange(len(atomic_numbers))
        self.register_buffer("atomic_numbers", torch.tensor(atomic_numbers, dtype=torch.long))  # [T]
        self.register_buffer("element_index", element_index)  # [119]
        self.register_buffer(
            "reference_energies",
            torch.tensor([config.reference_energies[z] for z in atomic_numbers], dtype=torch.float64),
        )  # [T]
        self.register_buffer("scale", torch.tensor(config.scale, dtype=torch.float64))  # []

    @torch.no_grad()
    def shift_reference_energies_(self, shift: dict[int, float]) -> None:
        """Adds ``shift[z]`` (meV) to the reference energy :math:`E_0[z]` of each given element, in the
        buffer and in ``config`` (so a saved and reloaded model keeps it). Forces do not change."""
        unknown = sorted(set(shift) - set(self.config.atomic_numbers))
        if unknown:
            raise ValueError(f"Cannot shift the reference energies of {unknown}: the model knows {self.config.atomic_numbers}.")
        for z, delta in shift.items():
            self.config.reference_energies[z] += float(delta)
            self.reference_energies[self.config.atomic_numbers.index(z)] += float(delta)

    @classmethod
    def from_config(cls, config: PotentialConfig) -> "PonitaPotential":
        """A potential with the architecture and statistics of ``config`` (fresh network weights)."""
        return cls(config.atomic_numbers, config.reference_energies, config.scale, **config.network)

    def forward(self, data: Data) -> tuple[Tensor, Tensor]:
        """Energies and forces of a batch of molecules; ``data`` is not modified.

        Args:
            data: ``Data`` or ``Batch`` with ``z`` ``[N]`` and ``pos`` ``[N, 3]`` (Å), optional ``batch``
                ``[N]``.

        Returns:
            ``(energy, forces)``: ``[G]`` in meV (float64) and ``[N, 3]`` in meV/Å.
        """
        with torch.enable_grad():
            pos = data.pos.detach().to(self.network.embedding.weight.dtype).requires_grad_(True)  # [N, 3]
            energy = self.energy(data, pos)  # [G]
            forces = compute_forces(energy, pos, training=self.training)  # [N, 3]
        return energy, forces

    def energy(self, data: Data, pos: Tensor) -> Tensor:
        """Energies ``[G]`` (meV, float64) of the molecules in ``data`` at positions ``pos`` ``[N, 3]``.

        Without ``data.batch`` (one molecule) no step waits for the device, so the forward and its
        forces can be traced and compiled (:func:`ponita.models.compile_energy_and_forces`).
        """
        inputs = self._inputs(data, pos)
        atomic, _ = self.network(inputs)  # [N, 1]
        atomic = atomic.squeeze(-1).to(torch.float64) * self.scale  # [N]
        atomic = atomic + self.reference_energies[self.element_index[data.z]]  # [N]
        if inputs.get("batch") is None:
            return atomic.sum(0, keepdim=True)  # [1]
        return scatter_sum(atomic, inputs.batch, num_graphs(data))  # [G]

    def _inputs(self, data: Data, pos: Tensor | None = None) -> Data:
        """The network's input: positions, one-hot elements ``[N, T]`` and, for a batch, ``batch``/``ptr``."""
        z = data.z
        if z.dim() != 1 or z.shape[0] != data.pos.shape[0]:
            raise ValueError(f"data.z must have shape [N] = [{data.pos.shape[0]}], got {list(z.shape)}.")
        index = self.element_index[z.clamp(0, MAX_ATOMIC_NUMBER)]  # [N], -1 for unknown elements

        def unknown_elements() -> str:
            unknown = sorted(set(z.tolist()) - set(self.atomic_numbers.tolist()))
            return (f"The input has element(s) {unknown} that the model was not trained on; it knows "
                    f"{self.atomic_numbers.tolist()}.")

        known = ((z >= 1) & (z <= MAX_ATOMIC_NUMBER) & (index >= 0)).all()
        require(known, "The input has elements that the model was not trained on.", unknown_elements)
        elements = torch.arange(len(self.atomic_numbers), device=z.device)  # [T]
        one_hot = index[:, None] == elements  # [N, T]; F.one_hot would read the indices on the host
        inputs = Data(pos=data.pos if pos is None else pos, x=one_hot.to(self.network.embedding.weight.dtype))
        if getattr(data, "edge_index", None) is not None:
            inputs.edge_index = data.edge_index  # a given graph (see Ponita.static_edges); else the network's own
        for name, value in graph_fields(data).items():
            inputs[name] = value
        return inputs

    def extra_repr(self) -> str:
        return f"atomic_numbers={self.atomic_numbers.tolist()}, scale={float(self.scale):.4g}"


def load_potential(path: str | Path, map_location: str | torch.device = "cpu") -> PonitaPotential:
    """Loads a potential saved by :func:`ponita.models.save_model` (e.g. ``potential.pt``), in eval mode.

    Raises:
        ValueError: if the file is unreadable, or holds another kind of model (the message names it).

    Example:
        >>> import tempfile
        >>> from ponita.models import PonitaPotential, load_potential, save_model
        >>> model = PonitaPotential([1, 8], {1: -10.0, 8: -20.0}, 1.0, hidden_dim=8, num_layers=1, num_ori=4)
        >>> with tempfile.TemporaryDirectory() as folder:  # e.g. runs/quick/potential.pt of `ponita train md17`
        ...     loaded = load_potential(save_model(model, f"{folder}/potential.pt", task="md17"))
        >>> loaded.training, loaded.config == model.config, torch.equal(loaded.scale, model.scale)
        (False, True, True)
    """
    checkpoint = read_checkpoint(path, map_location)
    if checkpoint.model_class != PonitaPotential.__name__:
        raise ValueError(
            f"{path} holds {describe_model(checkpoint.model_class)} (task {checkpoint.task!r}), not an interatomic potential; "
            "pass a potential.pt written by `ponita train md17`."
        )
    return checkpoint.build(map_location)
