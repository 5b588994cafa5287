"""Compiled energies and forces: the forward pass and its gradient traced into one graph, then compiled."""

from collections.abc import Callable

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ._energy_model import compute_forces

EnergyFn = Callable[[Tensor], Tensor]
"""``energy(pos [N, n]) -> energies [G]``."""


def compile_energy_and_forces(
    energy: EnergyFn, example_pos: Tensor, backend: str = "inductor"
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    r"""``pos -> (energy, forces)`` for fixed atoms, compiled as one graph of forward and backward ops.

    ``torch.compile`` cannot capture ``torch.autograd.grad`` inside a model, so (as recent NequIP and
    MACE do) the function :math:`x \mapsto (E(x), -\partial E/\partial x)` is first traced with
    ``make_fx`` on ``example_pos``: every aten operator of the forward pass and of the gradient lands
    in one FX graph, whose weights are constants. That graph is then compiled with ``backend``
    (Inductor by default: fused loops in C++ on the CPU, Triton on CUDA).

    The result is specialised to what the trace saw, which suits molecular dynamics and repeated
    inference of one system: the number of atoms, their species and the graph built from them are
    fixed, and so are the weights (for inference of a trained model; a model trained further needs a
    new trace). Steps whose output size depends on the values (e.g. building a radius graph) cannot be
    traced: give ``energy`` a fixed graph instead (:meth:`ponita.Ponita.static_edges`).

    Args:
        energy: energies ``[G]`` of the atoms at positions ``pos``; called once, on ``example_pos``.
        example_pos: positions ``[N, n]`` in the dtype and on the device of later calls.
        backend: a ``torch.compile`` backend (``"inductor"``, or ``"aot_eager"`` to check the trace fast).

    Returns:
        ``energy_and_forces(pos) -> (energies [G], forces [N, n])``, without autograd history.

    Example:
        >>> pos = torch.randn(4, 3, dtype=torch.float64)
        >>> energy_and_forces = compile_energy_and_forces(lambda p: p.pow(2).sum().view(1), pos, backend="aot_eager")
        >>> energy, forces = energy_and_forces(pos)
        >>> torch.allclose(forces, -2 * pos)
        True
    """

    def energy_and_forces(pos: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            pos = pos.detach().requires_grad_(True)
            energies = energy(pos)  # [G]
            forces = compute_forces(energies, pos, training=False)  # [N, n]
        return energies.detach(), forces.detach()

    graph = make_fx(energy_and_forces, tracing_mode="real")(example_pos.detach())  # weights become constants
    if backend == "inductor" and hasattr(torch._inductor, "compile"):
        # The traced graph straight to Inductor, without TorchDynamo's frame evaluation and guards around every
        # call. On the CPU, Inductor's C++ wrapper calls the graph's ~60 kernels without a Python frame each, at
        # a longer first compile (docs/performance.md, "MD: 2.3× from three overheads").
        options = {"cpp_wrapper": True} if example_pos.device.type == "cpu" else None
        compiled = torch._inductor.compile(graph, [example_pos.detach()], options=options)
        return lambda pos: tuple(compiled(pos))
    return torch.compile(graph, fullgraph=True, backend=backend, dynamic=False)
